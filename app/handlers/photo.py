"""Photos, albums and images sent as files: answered by a model that sees them."""

from __future__ import annotations

from aiogram import Bot, Router
from aiogram.types import Message
from sqlalchemy.ext.asyncio import AsyncSession

from app import texts
from app.domain.enums import MessageSource
from app.domain.media import ImageFile
from app.domain.users import Preferences, UserContext
from app.filters import Pictured, thread_of
from app.handlers.chat import answer_within_budget, reply_and_speak
from app.services.chat import ChatService
from app.services.speech import SpeechService


async def photo_message(
    message: Message,
    bot: Bot,
    user: UserContext,
    preferences: Preferences,
    session: AsyncSession,
    chat: ChatService,
    speech: SpeechService,
    images: list[ImageFile],
    album: list[Message] | None = None,
) -> None:
    parts = album or [message]
    caption = "\n\n".join(part.caption for part in parts if part.caption)
    if len(images) < len(parts):
        # An album may mix photos with videos or files: the rest is not silently dropped.
        await message.answer(texts.album_parts_skipped(len(parts) - len(images)))
    answering = reply_and_speak(
        message,
        bot,
        user,
        preferences,
        session,
        chat,
        speech,
        text=caption,
        source=MessageSource.PHOTO,
        images=images,
    )
    await answer_within_budget(bot, message.chat.id, answering, thread_id=thread_of(message))


def create_router() -> Router:
    router = Router(name=__name__)
    router.message.register(photo_message, Pictured())
    return router
