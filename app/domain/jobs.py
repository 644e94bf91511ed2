"""A job a plugin scheduled (a reminder), as the plugin gets it back."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any


@dataclass(frozen=True, slots=True)
class Job:
    id: int
    user_id: int
    chat_id: int
    thread_id: int | None
    due_at: datetime  # aware, UTC
    payload: dict[str, Any] = field(default_factory=dict)
    attempts: int = 0  # failed attempts so far
