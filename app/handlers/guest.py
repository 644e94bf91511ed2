"""Guest mode (Bot API 10.0): someone mentions the bot in a chat it is not a member of, and
Telegram sends a `guest_message`. A user with access gets one answer there, streamed into
its message and stored in their own conversation, marked as a guest turn; anyone else a
one-line refusal."""

from __future__ import annotations

import logging

from aiogram import Bot, Router
from aiogram.exceptions import TelegramAPIError
from aiogram.types import InlineQueryResultArticle, InputTextMessageContent, Message
from sqlalchemy.ext.asyncio import AsyncSession

from app.domain.enums import MessageSource
from app.domain.groups import ChatPlace
from app.domain.users import Preferences, UserContext
from app.filters import question_to
from app.services.chat import ChatService
from app.services.usage import BudgetRefused
from app.views import groups as views
from app.views.usage import budget_refusal

log = logging.getLogger(__name__)


async def guest_question(
    message: Message,
    bot: Bot,
    user: UserContext,
    preferences: Preferences,
    session: AsyncSession,
    chat: ChatService,
) -> None:
    query_id = message.guest_query_id
    if query_id is None:
        return
    if not user.has_access or user.blocked:
        await _answer_once(bot, query_id, views.guest_needs_access())
        return
    question = question_to(message, await bot.me()) or (message.text or "").strip()
    if not question:
        await _answer_once(bot, query_id, views.ask_something())
        return
    place = ChatPlace(user.id, None, guest_query_id=query_id)
    try:
        await chat.reply(
            bot,
            session,
            chat_id=user.id,  # what goes wrong is told in the asker's private chat
            user_id=user.id,
            preferences=preferences,
            text=question,
            draft_id=message.message_id,
            source=MessageSource.GUEST,
            place=place,
        )
    except BudgetRefused as refused:
        await _answer_once(bot, query_id, budget_refusal(refused.reached, refused.currency))


async def _answer_once(bot: Bot, query_id: str, text: str) -> None:
    try:
        await bot.answer_guest_query(
            guest_query_id=query_id,
            result=InlineQueryResultArticle(
                id="note",
                title=text[:64],
                input_message_content=InputTextMessageContent(message_text=text),
            ),
        )
    except TelegramAPIError as exc:
        log.info("Guest query not answered: %s", exc)


def create_router() -> Router:
    router = Router(name=__name__)
    router.guest_message.register(guest_question)
    return router
