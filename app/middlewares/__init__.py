"""Middlewares: what every update passes through before a handler (what they add to the
handler's data is typed in app/dependencies.py)."""
