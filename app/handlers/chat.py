"""Any text that is not a command: answered by the model in the persona's voice."""

from __future__ import annotations

from collections.abc import Awaitable, Sequence
from typing import TypeVar

from aiogram import Bot, F, Router
from aiogram.types import Message
from sqlalchemy.ext.asyncio import AsyncSession

from app.domain.enums import MessageSource
from app.domain.groups import ChatPlace
from app.domain.media import ImageFile
from app.domain.users import Preferences, UserContext
from app.filters import thread_of
from app.services.chat import ChatService
from app.services.speech import SpeechService, wants_voice
from app.services.usage import BudgetRefused
from app.views.usage import budget_refusal

T = TypeVar("T")


async def answer_within_budget(
    bot: Bot, chat_id: int, answering: Awaitable[T], *, thread_id: int | None = None
) -> T | None:
    """Run the chat service's answer; a user over a limit is told which, and when it resets
    (in the topic `thread_id`, when the message was in one)."""
    try:
        return await answering
    except BudgetRefused as refused:
        await bot.send_message(
            chat_id,
            budget_refusal(refused.reached, refused.currency),
            message_thread_id=thread_id,
        )
        return None


def topic_of(message: Message) -> ChatPlace | None:
    """The topic of a private chat the message is in (the bot's topic mode): each topic is
    a conversation of its own."""
    thread_id = thread_of(message)
    if message.chat.type == "private" and thread_id:
        return ChatPlace(message.chat.id, thread_id)
    return None


async def reply_and_speak(
    message: Message,
    bot: Bot,
    user: UserContext,
    preferences: Preferences,
    session: AsyncSession,
    chat: ChatService,
    speech: SpeechService,
    *,
    text: str,
    source: MessageSource = MessageSource.TEXT,
    images: Sequence[ImageFile] = (),
) -> None:
    """Answer the message's text (typed, transcribed, or a caption with its images), then
    speak the answer when the user's voice answers setting asks for it."""
    answer = await chat.reply(
        bot,
        session,
        chat_id=message.chat.id,
        user_id=user.id,
        preferences=preferences,
        text=text,
        draft_id=message.message_id,
        telegram_message_id=message.message_id,
        source=source,
        images=images,
        place=topic_of(message),
    )
    spoken = source is MessageSource.VOICE
    if answer is not None and wants_voice(preferences.voice_replies, spoken=spoken):
        await speech.say(bot, session, chat_id=message.chat.id, user_id=user.id, answer=answer)


async def chat_message(
    message: Message,
    bot: Bot,
    user: UserContext,
    preferences: Preferences,
    session: AsyncSession,
    chat: ChatService,
    speech: SpeechService,
) -> None:
    answering = reply_and_speak(
        message, bot, user, preferences, session, chat, speech, text=message.text or ""
    )
    await answer_within_budget(bot, message.chat.id, answering, thread_id=thread_of(message))


async def edited_message(
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
        chat.edit(
            bot,
            session,
            chat_id=message.chat.id,
            user_id=user.id,
            preferences=preferences,
            text=message.text or "",
            telegram_message_id=message.message_id,
            # A new draft id: the old answer's draft is long gone.
            draft_id=message.message_id + (message.edit_date or 0),
            place=place,
        ),
        thread_id=place.thread_id if place else None,
    )


def create_router() -> Router:
    router = Router(name=__name__)
    router.edited_message.filter(F.chat.type == "private")
    router.message.register(chat_message, F.text, ~F.text.startswith("/"))
    router.edited_message.register(edited_message, F.text, ~F.text.startswith("/"))
    return router
