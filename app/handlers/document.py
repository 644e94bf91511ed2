"""Documents (PDF, Word, text, code, ...): read, then answered like a message that carries
them; a long one is kept in parts, of which each question gets the matching ones."""

from __future__ import annotations

from aiogram import Bot, Router
from aiogram.types import Message
from sqlalchemy.ext.asyncio import AsyncSession

from app import texts
from app.domain.enums import MessageSource
from app.domain.media import DocumentFile
from app.domain.users import Preferences, UserContext
from app.filters import Document, document_of
from app.handlers.chat import answer_within_budget, topic_of
from app.services.chat import ChatService
from app.services.documents import DocumentService


async def document_message(
    message: Message,
    bot: Bot,
    user: UserContext,
    preferences: Preferences,
    session: AsyncSession,
    chat: ChatService,
    documents: DocumentService,
    document: DocumentFile,
    album: list[Message] | None = None,
) -> None:
    """A document; several sent together (an album of files) are answered one by one."""
    chat_id = message.chat.id
    sent = [(part, file) for part in album or [message] if (file := document_of(part))]
    if not sent:  # the album's first part is this document, whatever the filter saw
        sent = [(message, document)]
    if album and len(sent) < len(album):
        await message.answer(texts.album_parts_skipped(len(album) - len(sent)))

    async def answer(part: Message, file: DocumentFile) -> None:
        read = await documents.read(
            bot,
            session,
            chat_id=chat_id,
            user_id=user.id,
            preferences=preferences,
            document=file,
            caption=part.caption or "",
        )
        if read is None:
            return
        await chat.reply(
            bot,
            session,
            chat_id=chat_id,
            user_id=user.id,
            preferences=preferences,
            text=read.text,
            draft_id=part.message_id,
            telegram_message_id=part.message_id,
            source=MessageSource.DOCUMENT,
            document=read,
            place=topic_of(part),
        )

    for part, file in sent:
        await answer_within_budget(bot, chat_id, answer(part, file))


def create_router() -> Router:
    router = Router(name=__name__)
    router.message.register(document_message, Document())
    return router
