"""Application services: what handlers call; they own transactions and return plain data."""
