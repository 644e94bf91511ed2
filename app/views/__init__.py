"""Dialog screens: the text and keyboard of each step, built from service data."""
