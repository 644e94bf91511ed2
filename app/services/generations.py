"""Answers being generated right now, so that a stop (Telegram's stop button on a draft, or
/stop) finds the one it means and ends it at once."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field


@dataclass(slots=True)
class Generation:
    """One answer on its way to one chat."""

    chat_id: int
    draft_id: int
    stopped: asyncio.Event = field(default_factory=asyncio.Event)
    # time.monotonic() when the stop arrived: bench/stream.py measures from it.
    stopped_at: float | None = None


class Generations:
    """At most one answer per chat at a time: a chat's messages are answered one after the
    other (app/middlewares/serial.py), and a stop must reach the answer that runs, not wait
    for it behind that lock."""

    def __init__(self) -> None:
        self._by_chat: dict[int, Generation] = {}

    @contextmanager
    def running(self, chat_id: int, draft_id: int) -> Iterator[Generation]:
        generation = Generation(chat_id, draft_id)
        self._by_chat[chat_id] = generation
        try:
            yield generation
        finally:
            if self._by_chat.get(chat_id) is generation:
                del self._by_chat[chat_id]

    def stop(self, chat_id: int, draft_id: int | None = None) -> bool:
        """Stop the chat's answer (only the one with `draft_id`, when given); False when no
        such answer runs: it has finished, or the stop is for an older draft."""
        generation = self._by_chat.get(chat_id)
        if generation is None or (draft_id is not None and generation.draft_id != draft_id):
            return False
        if not generation.stopped.is_set():
            generation.stopped_at = time.monotonic()
            generation.stopped.set()
        return True
