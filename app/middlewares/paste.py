"""A long paste that Telegram cut into several messages is answered as one message."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from aiogram import BaseMiddleware
from aiogram.types import Message, TelegramObject, Update

from app.delivery.split import telegram_length
from app.middlewares.placement import placed

log = logging.getLogger(__name__)

# Telegram apps cut a text longer than 4096 characters into messages of up to 4096. A part
# this long may be followed by more; a shorter one is the last (or a message of its own).
LONG_PART = 3_000


@dataclass(slots=True)
class _Paste:
    parts: list[str]
    arrived: asyncio.Event = field(default_factory=asyncio.Event)


class PasteMergeMiddleware(BaseMiddleware):
    """Outer update middleware, before the per-user ordering: holds a long text message for
    up to `window` seconds and appends the texts that follow it meanwhile; those updates
    are then done. Short messages pass at once, so ordinary chat waits for nothing.
    """

    def __init__(self, window: float = 1.0) -> None:
        self.window = window
        self._open: dict[int, _Paste] = {}

    async def __call__(
        self,
        handler: Callable[[TelegramObject, dict[str, Any]], Awaitable[Any]],
        event: TelegramObject,
        data: dict[str, Any],
    ) -> Any:
        message = event.message if isinstance(event, Update) else None
        if not _is_chat_text(message):
            return await handler(event, data)
        assert message is not None and message.text is not None and message.from_user
        user_id = message.from_user.id
        if (paste := self._open.get(user_id)) is not None:
            paste.parts.append(message.text)
            paste.arrived.set()
            return None  # answered as part of the first message
        if telegram_length(message.text) < LONG_PART:
            return await handler(event, data)
        paste = self._open[user_id] = _Paste([message.text])
        placed()  # what follows meanwhile is absorbed: Telegram may send it now
        try:
            await self._collect(paste)
        finally:
            del self._open[user_id]
        if len(paste.parts) > 1:
            log.info("Merged %d messages of user %s into one", len(paste.parts), user_id)
            merged = message.model_copy(update={"text": "\n".join(paste.parts)})
            event = event.model_copy(update={"message": merged})
            data["event_update"] = event
        return await handler(event, data)

    async def _collect(self, paste: _Paste) -> None:
        while True:
            paste.arrived.clear()
            try:
                await asyncio.wait_for(paste.arrived.wait(), self.window)
            except TimeoutError:
                return
            if telegram_length(paste.parts[-1]) < LONG_PART:
                return  # a short part ends the paste


def _is_chat_text(message: Message | None) -> bool:
    return (
        message is not None
        and message.from_user is not None
        and message.chat.type == "private"
        and bool(message.text)
        and not (message.text or "").startswith("/")
    )
