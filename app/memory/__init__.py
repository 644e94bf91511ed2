"""What the model sees: persona memory and conversation history within an exact token budget."""
