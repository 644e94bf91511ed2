"""The one clock: aware UTC times, from a function so tests and defaults call it late."""

from __future__ import annotations

from datetime import UTC, datetime


def utcnow() -> datetime:
    return datetime.now(UTC)
