"""An album (several photos or files sent together) is answered once, as one message."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from aiogram import BaseMiddleware
from aiogram.types import Message, TelegramObject, Update

from app.middlewares.placement import placed

log = logging.getLogger(__name__)


@dataclass(slots=True)
class _Album:
    parts: list[Message]
    arrived: asyncio.Event = field(default_factory=asyncio.Event)


class AlbumMiddleware(BaseMiddleware):
    """Outer update middleware, before the per-user ordering: Telegram sends an album as
    one message per item, sharing a `media_group_id`, one right after another. The first
    is held until none has followed for `window` seconds, and goes on with every part as
    `album` (in the order sent, the caption wherever it was); the others are then done.
    Messages outside albums pass at once.

    aiogram has no album support of its own (its docs leave it to a middleware like this
    one). The parts are gathered per process: with several webhook replicas, parts of one
    album that reach different replicas are answered apart.
    """

    def __init__(self, window: float = 0.6) -> None:
        self.window = window
        self._open: dict[str, _Album] = {}

    async def __call__(
        self,
        handler: Callable[[TelegramObject, dict[str, Any]], Awaitable[Any]],
        event: TelegramObject,
        data: dict[str, Any],
    ) -> Any:
        message = event.message if isinstance(event, Update) else None
        group = message.media_group_id if message is not None else None
        if message is None or group is None or message.from_user is None:
            return await handler(event, data)
        key = f"{message.chat.id}:{group}"
        if (album := self._open.get(key)) is not None:
            album.parts.append(message)
            album.arrived.set()
            return None  # answered with the first part
        album = self._open[key] = _Album([message])
        placed()  # the rest of the album is absorbed: Telegram may send it now
        try:
            while True:
                album.arrived.clear()
                try:
                    await asyncio.wait_for(album.arrived.wait(), self.window)
                except TimeoutError:
                    break
        finally:
            del self._open[key]
        log.debug("Album of %d parts from user %s", len(album.parts), message.from_user.id)
        data["album"] = sorted(album.parts, key=lambda part: part.message_id)
        return await handler(event, data)
