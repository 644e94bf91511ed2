"""Inline keyboards: callback data factories and the keyboards built from them."""
