"""Filters on who is writing, decided once by the access middleware."""

from __future__ import annotations

from aiogram.filters import Filter
from aiogram.types import TelegramObject

from app.services.users import UserContext


class HasAccess(Filter):
    """Passes when the user may talk to the model."""

    async def __call__(self, event: TelegramObject, user: UserContext | None = None) -> bool:
        return user is not None and user.has_access
