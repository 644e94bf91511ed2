"""Any text that is not a command: answered by the model in the persona's voice."""

from __future__ import annotations

from aiogram import Bot, F, Router
from aiogram.types import Message
from sqlalchemy.ext.asyncio import AsyncSession

from app.services.chat import ChatService, UserSettings
from app.services.users import UserContext


async def chat_message(
    message: Message,
    bot: Bot,
    user: UserContext,
    user_settings: UserSettings,
    session: AsyncSession,
    chat: ChatService,
) -> None:
    await chat.reply(
        bot,
        session,
        chat_id=message.chat.id,
        user_id=user.id,
        settings=user_settings,
        text=message.text or "",
        draft_id=message.message_id,
        telegram_message_id=message.message_id,
    )


async def edited_message(
    message: Message,
    bot: Bot,
    user: UserContext,
    user_settings: UserSettings,
    session: AsyncSession,
    chat: ChatService,
) -> None:
    await chat.edit(
        bot,
        session,
        chat_id=message.chat.id,
        user_id=user.id,
        settings=user_settings,
        text=message.text or "",
        telegram_message_id=message.message_id,
        # A new draft id: the old answer's draft is long gone.
        draft_id=message.message_id + (message.edit_date or 0),
    )


def create_router() -> Router:
    router = Router(name=__name__)
    router.edited_message.filter(F.chat.type == "private")
    router.message.register(chat_message, F.text, ~F.text.startswith("/"))
    router.edited_message.register(edited_message, F.text, ~F.text.startswith("/"))
    return router
