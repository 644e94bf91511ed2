"""/new starts a fresh conversation with the persona; /retry answers the last message again."""

from __future__ import annotations

from aiogram import Bot, Router
from aiogram.filters import Command
from aiogram.types import Message
from sqlalchemy.ext.asyncio import AsyncSession

from app import texts
from app.domain.users import Preferences, UserContext
from app.handlers.chat import answer_within_budget
from app.memory.service import MemoryService
from app.services.chat import ChatService


async def new_conversation(
    message: Message,
    user: UserContext,
    preferences: Preferences,
    session: AsyncSession,
    memory: MemoryService,
) -> None:
    await memory.new_conversation(session, user.id, preferences.persona.id)
    await message.answer(texts.new_conversation(preferences.persona.name))


async def retry(
    message: Message,
    bot: Bot,
    user: UserContext,
    preferences: Preferences,
    session: AsyncSession,
    chat: ChatService,
) -> None:
    await answer_within_budget(
        message,
        chat.retry(
            bot,
            session,
            chat_id=message.chat.id,
            user_id=user.id,
            preferences=preferences,
            draft_id=message.message_id,
        ),
    )


def create_router() -> Router:
    router = Router(name=__name__)
    router.message.register(new_conversation, Command("new"))
    router.message.register(retry, Command("retry"))
    return router
