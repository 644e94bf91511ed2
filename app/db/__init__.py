"""Persistence: SQLAlchemy models, the engine and the repositories."""
