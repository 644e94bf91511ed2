"""/new starts a fresh conversation with the persona; /retry answers the last message again."""

from __future__ import annotations

from aiogram import Bot, Router
from aiogram.filters import Command
from aiogram.types import Message
from sqlalchemy.ext.asyncio import AsyncSession

from app import texts
from app.memory.service import MemoryService
from app.services.chat import ChatService, UserSettings
from app.services.users import UserContext


async def new_conversation(
    message: Message,
    user: UserContext,
    user_settings: UserSettings,
    session: AsyncSession,
    memory: MemoryService,
) -> None:
    await memory.new_conversation(session, user.id, user_settings.persona.id)
    await message.answer(texts.new_conversation(user_settings.persona.name))


async def retry(
    message: Message,
    bot: Bot,
    user: UserContext,
    user_settings: UserSettings,
    session: AsyncSession,
    chat: ChatService,
) -> None:
    await chat.retry(
        bot,
        session,
        chat_id=message.chat.id,
        user_id=user.id,
        settings=user_settings,
        draft_id=message.message_id,
    )


def create_router() -> Router:
    router = Router(name=__name__)
    router.message.register(new_conversation, Command("new"))
    router.message.register(retry, Command("retry"))
    return router
