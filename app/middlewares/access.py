"""Decides who is writing and what they may do, from the database, before any handler runs."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from aiogram import BaseMiddleware
from aiogram.types import TelegramObject, User

from app.services.identity import IdentityService


class AccessMiddleware(BaseMiddleware):
    """Outer middleware, after the session one: puts the `user` (a UserContext, with the
    persona they talk to) into the handler data."""

    def __init__(self, users: IdentityService) -> None:
        self.users = users

    async def __call__(
        self,
        handler: Callable[[TelegramObject, dict[str, Any]], Awaitable[Any]],
        event: TelegramObject,
        data: dict[str, Any],
    ) -> Any:
        tg_user: User | None = data.get("event_from_user")
        if tg_user is None or tg_user.is_bot:
            return None  # channel posts, other bots: nothing for us
        data["user"] = await self.users.resolve(data["session"], tg_user)
        return await handler(event, data)
