"""/new: starts a fresh conversation with the current persona."""

from __future__ import annotations

from aiogram import Router
from aiogram.filters import Command
from aiogram.types import Message
from sqlalchemy.ext.asyncio import AsyncSession

from app import texts
from app.filters import HasAccess
from app.memory.service import MemoryService
from app.services.chat import UserSettings
from app.services.users import UserContext


async def new_conversation(
    message: Message,
    user: UserContext,
    user_settings: UserSettings,
    session: AsyncSession,
    memory: MemoryService,
) -> None:
    await memory.new_conversation(session, user.id, user_settings.persona.id)
    await message.answer(texts.NEW_CONVERSATION.format(persona=user_settings.persona.name))


def create_router() -> Router:
    router = Router(name=__name__)
    router.message.filter(HasAccess())
    router.message.register(new_conversation, Command("new"))
    return router
