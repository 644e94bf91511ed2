"""/start: a greeting with the user's id, their access and their persona."""

from __future__ import annotations

from aiogram import Router
from aiogram.filters import CommandStart
from aiogram.types import Message

from app import texts
from app.domain.users import Preferences, UserContext


async def start(message: Message, user: UserContext, preferences: Preferences) -> None:
    # Users without access never get here: the access-request router answers them first.
    await message.answer(texts.start(user.first_name, user.id, preferences.persona.name))


def create_router() -> Router:
    router = Router(name=__name__)
    router.message.register(start, CommandStart())
    return router
