"""The model: one AsyncOpenAI client per process, streaming chat completions."""
