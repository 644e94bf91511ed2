"""One database session per handled event."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from aiogram import BaseMiddleware
from aiogram.types import TelegramObject
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.db.session import current_session


class DbSessionMiddleware(BaseMiddleware):
    """One session per message or button press, committed when the handler succeeds.

    An outer middleware, not an inner one: access is decided from the database for every
    message before any handler is chosen, so a session is needed there anyway, and one
    session serves the access check, the handler and the dialog state (one connection per
    update instead of four: see bench/load.py).

    Not `session.begin()` as a block: a chat answer commits the user's message itself before
    it calls the model, so that no transaction stays open while the answer streams.
    """

    def __init__(self, pool: async_sessionmaker[AsyncSession]) -> None:
        self.pool = pool

    async def __call__(
        self,
        handler: Callable[[TelegramObject, dict[str, Any]], Awaitable[Any]],
        event: TelegramObject,
        data: dict[str, Any],
    ) -> Any:
        async with self.pool() as session:
            data["session"] = session
            token = current_session.set(session)
            try:
                result = await handler(event, data)
                await session.commit()
            finally:
                current_session.reset(token)
            return result
