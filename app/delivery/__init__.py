"""Getting an answer to the user: streamed drafts or edits, then the final message(s)."""
