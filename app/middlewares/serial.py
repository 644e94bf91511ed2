"""Handles one user's updates one at a time, in the order they arrived."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

from aiogram import BaseMiddleware, Bot
from aiogram.types import Chat, TelegramObject, Update, User

from app.middlewares.placement import placed
from app.middlewares.shared_lock import SharedUserLocks


class PerUserSerialMiddleware(BaseMiddleware):
    """Outer update middleware: one user's updates one at a time, in order.

    In one process, a FIFO lock per user. It must run before anything that awaits: aiogram
    starts a task per update in arrival order, and each reaches this lock without
    suspending, so `asyncio.Lock`'s FIFO waiters keep the user's messages in order. (The
    paste middleware before it waits only on a long text, and absorbs what follows it
    meanwhile.) A second message waits for the first answer, so the history never
    interleaves. With REDIS_URL set, `SharedUserLocks` takes the lock's place: a queue per
    user in Redis ordered by update id, which every update enters on arrival, so that
    several processes answer one user one message at a time in Telegram's order.

    /stop is the exception: it must reach the answer it stops, not wait behind it.
    (Telegram's stop button arrives as an update without a user, so it never waits here.)
    """

    def __init__(self, shared: SharedUserLocks | None = None) -> None:
        self.shared = shared
        self._locks: dict[int, asyncio.Lock] = {}
        self._waiting: dict[int, int] = {}

    async def __call__(
        self,
        handler: Callable[[TelegramObject, dict[str, Any]], Awaitable[Any]],
        event: TelegramObject,
        data: dict[str, Any],
    ) -> Any:
        user: User | None = data.get("event_from_user")
        if user is None or _is_stop(event):
            placed()
            return await handler(event, data)
        # A group's members share its conversation: its messages queue by the group (whose
        # id, negative, never meets a user's).
        chat: Chat | None = data.get("event_chat")
        key = chat.id if chat is not None and chat.type in ("group", "supergroup") else user.id
        if self.shared is not None:
            bot: Bot | None = data.get("bot")
            bot_id = bot.id if bot is not None else 0
            async with self.shared.hold(bot_id, key, _update_id(event, data), placed):
                return await handler(event, data)
        placed()  # the lock below queues it before this task next awaits
        lock = self._locks.setdefault(key, asyncio.Lock())
        self._waiting[key] = self._waiting.get(key, 0) + 1
        try:
            async with lock:
                return await handler(event, data)
        finally:
            self._waiting[key] -= 1
            if not self._waiting[key]:
                # Nobody else holds or awaits this lock: forget it, or the dict grows forever.
                del self._waiting[key]
                del self._locks[key]


def _update_id(event: TelegramObject, data: dict[str, Any]) -> int:
    """Telegram's number of the update, in the order it received the updates."""
    update = event if isinstance(event, Update) else data["event_update"]
    assert isinstance(update, Update)
    return update.update_id


def _is_stop(event: TelegramObject) -> bool:
    """A /stop (or /stop@ThisBot) message."""
    message = event.message if isinstance(event, Update) else None
    text = message.text if message is not None else None
    if text is None or not text.startswith("/stop"):
        return False
    return text.split(maxsplit=1)[0].split("@", 1)[0] == "/stop"
