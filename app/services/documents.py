"""Documents users send: fetched from Telegram, read (app/documents/), and made a turn of
the conversation: whole when it fits its share of the budget (MEMORY_DOCUMENT_SHARE),
otherwise split into parts stored with the conversation, of which those matching each
question are sent (app/memory/service.py). Never silently cut; refused in one sentence,
with nothing stored, when it cannot be read."""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, field

from aiogram import Bot
from aiogram.utils.chat_action import ChatActionSender
from sqlalchemy.ext.asyncio import AsyncSession

from app import texts
from app.config import DocumentSettings
from app.domain.documents import DocumentRefused, Extracted, Refusal, RenderedPage
from app.domain.media import DocumentFile
from app.domain.users import Preferences
from app.memory.service import MemoryService
from app.services.downloads import download_or_tell
from app.services.usage import UsageService

log = logging.getLogger(__name__)
# pypdf warns of every flaw of a damaged file it reads past; the user is told in one
# sentence, and a flaw is no news for the log.
logging.getLogger("pypdf").setLevel(logging.ERROR)

# The readers (pypdf, python-docx, pypdfium2: some 40 MB of memory once imported) are
# imported on the first document, not at start-up: a bot that is never sent one never
# pays for them (bench/media.py).

# The most tokens of one part of a long document: small enough that several fit the share
# of even a small window, large enough that a part keeps its context.
PART_TOKENS = 800
MIN_PART_TOKENS = 64
# Told to the model about a document: English, like the other instructions to it.
WHOLE = '[Document "{name}"{pages}]\n{text}\n[End of document "{name}"]'
SPLIT = (
    '[Document "{name}"{pages}, about {tokens} tokens: too long to show whole. The parts of '
    "it that bear on each message are shown with that message.]"
)
SCANNED = '[Document "{name}": a scanned PDF; the images are its first {shown} of {pages} pages.]'


@dataclass(frozen=True, slots=True)
class ReadDocument:
    """A document made ready to be a user turn: `text` is what the turn says; a long
    document's `parts` (text, tokens) are stored beside it; a scan's `pages` go as images."""

    file: DocumentFile
    text: str
    # What the parts are searched for in the message that sends the document: its caption.
    query: str = ""
    parts: list[tuple[str, int]] = field(default_factory=list)
    pages: list[RenderedPage] = field(default_factory=list)


class DocumentService:
    def __init__(
        self,
        settings: DocumentSettings,
        memory: MemoryService,
        *,
        usage: UsageService | None = None,
        download_limit: int | None,
    ) -> None:
        self.settings = settings
        self.memory = memory
        self.usage = usage
        self.download_limit = download_limit

    @property
    def max_bytes(self) -> int:
        return self.settings.max_mb * 1024 * 1024

    async def read(
        self,
        bot: Bot,
        session: AsyncSession,
        *,
        chat_id: int,
        user_id: int,
        preferences: Preferences,
        document: DocumentFile,
        caption: str,
    ) -> ReadDocument | None:
        """The document as a turn, or None once the user was told why not. Raises
        BudgetRefused for a user over a limit, before anything is downloaded."""
        limit = self.max_bytes
        if self.download_limit is not None:
            limit = min(limit, self.download_limit)
        if (document.size or 0) > limit:
            await bot.send_message(chat_id, self._too_large())
            return None
        if self.usage is not None and preferences.limited:
            await self.usage.refuse_over_limit(session, user_id)
        async with ChatActionSender.typing(bot=bot, chat_id=chat_id):
            data = await download_or_tell(bot, chat_id, document.file_id, self.download_limit)
            if data is None:
                return None
            from app.documents.extract import extract

            try:
                # CPU work (a 500-page PDF is seconds of it): off the event loop.
                read = await asyncio.to_thread(
                    extract,
                    data,
                    document.file_name,
                    document.mime_type,
                    max_bytes=self.max_bytes,
                    max_pages=self.settings.max_pages,
                )
            except DocumentRefused as refused:
                log.info("Document refused (%s): %s", refused.reason, refused.detail)
                await bot.send_message(chat_id, self._refusal(refused.reason))
                return None
            if not isinstance(read, Extracted):
                return await self._scanned(bot, chat_id, document, data, read.pages)
            return await self._as_turn(bot, session, chat_id, preferences, document, read, caption)

    async def _as_turn(
        self,
        bot: Bot,
        session: AsyncSession,
        chat_id: int,
        preferences: Preferences,
        document: DocumentFile,
        read: Extracted,
        caption: str,
    ) -> ReadDocument:
        name = document.file_name
        pages = f", {read.pages} pages" if read.pages else ""
        whole = WHOLE.format(name=name, pages=pages, text=read.text)
        counter = self.memory.counter
        persona = await self.memory.persona_memory(session, preferences.persona)
        room = self.memory.document_room(
            persona, preferences.model, preferences.mode, preferences.answer_length
        )
        # Counted in slices: tiktoken's list of a 20 MB text's token ids alone would take
        # some 150 MB. Cut at line ends, the slices' counts add up to within a few tokens
        # of the whole's; only a document near its share is counted whole, exactly.
        tokens = sum(counter.text(piece) for piece in _slices(read.text))
        if tokens <= room * 1.1 and counter.text(whole) <= room:
            return ReadDocument(document, _with_caption(whole, caption))
        from app.documents.chunks import split_chunks

        size = max(MIN_PART_TOKENS, min(PART_TOKENS, room // 3))
        chunks = await asyncio.to_thread(split_chunks, read.text, counter.text, size)
        parts = [(chunk, counter.text(chunk)) for chunk in chunks]
        await bot.send_message(chat_id, texts.document_split(name, read.pages, tokens, len(parts)))
        text = SPLIT.format(name=name, pages=pages, tokens=tokens)
        return ReadDocument(document, _with_caption(text, caption), caption, parts=parts)

    async def _scanned(
        self, bot: Bot, chat_id: int, document: DocumentFile, data: bytes, pages: int
    ) -> ReadDocument | None:
        shown = min(pages, self.settings.scan_pages)
        if shown == 0:
            await bot.send_message(chat_id, texts.document_scanned())
            return None
        from app.documents.render import render_pages

        try:
            rendered = await asyncio.to_thread(render_pages, data, shown)
        except DocumentRefused as refused:
            await bot.send_message(chat_id, self._refusal(refused.reason))
            return None
        text = SCANNED.format(name=document.file_name, shown=len(rendered), pages=pages)
        return ReadDocument(document, text, pages=rendered)

    def _too_large(self) -> str:
        return texts.document_refused(
            Refusal.TOO_LARGE, self.settings.max_mb, self.settings.max_pages
        )

    def _refusal(self, reason: Refusal) -> str:
        return texts.document_refused(reason, self.settings.max_mb, self.settings.max_pages)


def _slices(text: str, size: int = 256 * 1024) -> list[str]:
    """The text in consecutive pieces of about `size` characters, cut after a line end."""
    pieces: list[str] = []
    start = 0
    while start < len(text):
        end = min(len(text), start + size)
        if end < len(text):
            cut = text.rfind("\n", start, end)
            end = cut + 1 if cut > start else end
        pieces.append(text[start:end])
        start = end
    return pieces


def _with_caption(text: str, caption: str) -> str:
    return f"{text}\n\n{caption}" if caption.strip() else text
