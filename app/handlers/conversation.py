"""/new starts a fresh conversation with the persona; /retry answers the last message again;
Continue goes on with an answer cut at the length limit."""

from __future__ import annotations

import logging

from aiogram import Bot, Router
from aiogram.exceptions import TelegramAPIError
from aiogram.filters import Command
from aiogram.types import CallbackQuery, InaccessibleMessage, Message
from sqlalchemy.ext.asyncio import AsyncSession

from app import texts
from app.domain.users import Preferences, UserContext
from app.handlers.chat import answer_within_budget, topic_of
from app.keyboards.callbacks import ContinueButton
from app.memory.service import MemoryService
from app.services.chat import ChatService

log = logging.getLogger(__name__)


async def new_conversation(
    message: Message,
    bot: Bot,
    user: UserContext,
    preferences: Preferences,
    session: AsyncSession,
    memory: MemoryService,
) -> None:
    if (await bot.me()).has_topics_enabled:
        # The bot's topic mode: a new conversation is a new topic of the chat, named once
        # its first answer is in (app/services/chat.py).
        try:
            topic = await bot.create_forum_topic(message.chat.id, texts.new_topic_name())
        except TelegramAPIError as exc:
            log.info("No new topic in chat %s (%s): a new conversation here", user.id, exc)
        else:
            await bot.send_message(
                message.chat.id,
                texts.new_topic(preferences.persona.name),
                message_thread_id=topic.message_thread_id,
            )
            return
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
    place = topic_of(message)
    await answer_within_budget(
        bot,
        message.chat.id,
        chat.retry(
            bot,
            session,
            chat_id=message.chat.id,
            user_id=user.id,
            preferences=preferences,
            draft_id=message.message_id,
            place=place,
        ),
        thread_id=place.thread_id if place else None,
    )


async def continue_answer(
    callback: CallbackQuery,
    callback_data: ContinueButton,
    bot: Bot,
    user: UserContext,
    preferences: Preferences,
    session: AsyncSession,
    chat: ChatService,
) -> None:
    await callback.answer()
    message = callback.message
    if message is None:
        return
    await _without_button(message)
    # An answer in a topic of the private chat goes on in the topic's conversation.
    place = topic_of(message) if isinstance(message, Message) else None
    thread_id = place.thread_id if place else None
    continued = await answer_within_budget(
        bot,
        message.chat.id,
        chat.continue_answer(
            bot,
            session,
            chat_id=message.chat.id,
            user_id=user.id,
            preferences=preferences,
            answer_id=callback_data.answer_id,
            draft_id=message.message_id,
            place=place,
        ),
        thread_id=thread_id,
    )
    if continued is False:
        await bot.send_message(message.chat.id, texts.stale_button(), message_thread_id=thread_id)


async def _without_button(message: Message | InaccessibleMessage) -> None:
    """The answer being continued loses its button (not essential: it goes stale anyway)."""
    if isinstance(message, Message):
        try:
            await message.edit_reply_markup(reply_markup=None)
        except TelegramAPIError as exc:
            log.info("Continue button not removed: %s", exc)


def create_router() -> Router:
    router = Router(name=__name__)
    router.callback_query.register(continue_answer, ContinueButton.filter())
    router.message.register(new_conversation, Command("new"))
    router.message.register(retry, Command("retry"))
    return router
