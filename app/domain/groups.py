"""Groups as the services see them: where in a group a question was asked."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class GroupPlace:
    """Where a question was asked in a group: the chat, its forum topic (None outside
    topics), and the message the answer replies to."""

    chat_id: int
    thread_id: int | None
    reply_to: int
