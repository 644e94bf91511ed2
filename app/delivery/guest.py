"""An answer to a guest query (Bot API 10.0: someone mentioned the bot in a chat it is not a
member of): one message, sent with answerGuestQuery, then edited as the answer streams in
(an inline message, known by its inline_message_id). Unlike a chat, it cannot take more
messages: an answer longer than one message is cut there, and says so."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass

from aiogram import Bot
from aiogram.exceptions import TelegramAPIError, TelegramBadRequest
from aiogram.types import (
    InlineKeyboardMarkup,
    InlineQueryResultArticle,
    InputTextMessageContent,
    MessageEntity,
)

from app.delivery.errors import NotBotApiAnswer, brief
from app.delivery.render import Rendered, render
from app.delivery.split import split_rendered

log = logging.getLogger(__name__)

# Shown in the chat's list of results while the answer is sent.
RESULT_TITLE = "Answer"
CUT = "\n\n…"


@dataclass(slots=True)
class GuestAnswer:
    """The same two calls as AnswerStream (`show`, `finish`), into a guest query's message."""

    bot: Bot
    guest_query_id: str
    chat_id: int  # the asker: for the logs and the topic renamer, which skips it
    interval: float = 1.0
    clock: Callable[[], float] = time.monotonic
    thread_id: int | None = None
    _inline_id: str | None = None
    _next_at: float = 0.0
    _shown: str = ""
    _previews_failed: bool = False

    async def show(self, text: str, *, now: bool = False) -> None:
        clock = self.clock()
        if self._previews_failed or (clock < self._next_at and not now) or not text.strip():
            return
        self._next_at = clock + self.interval
        preview = _one_message(render(text))
        if preview.text == self._shown:
            return
        try:
            await self._put(preview.text, preview.entities or None)
            self._shown = preview.text
        except (TelegramAPIError, NotBotApiAnswer) as exc:
            # A server that cannot edit the message: the final answer goes in one call.
            log.info("Guest answer preview failed (%s); the answer comes whole", brief(exc))
            self._previews_failed = self._inline_id is None
            if self._inline_id is not None:
                self._next_at = clock + 5 * self.interval

    async def finish(
        self, text: str, keyboard: InlineKeyboardMarkup | None = None, *, reasoning: str = ""
    ) -> None:
        """The final text (reasoning is not shown to guests: one message holds little)."""
        final = _one_message(render(text))
        try:
            await self._put(final.text, final.entities or None)
        except TelegramBadRequest:
            await self._put(final.text, None)  # formatting refused: the text still goes

    async def _put(self, text: str, entities: list[MessageEntity] | None) -> None:
        if self._inline_id is None:
            sent = await self.bot.answer_guest_query(
                guest_query_id=self.guest_query_id,
                result=InlineQueryResultArticle(
                    id="answer",
                    title=RESULT_TITLE,
                    input_message_content=InputTextMessageContent(
                        message_text=text, entities=entities, parse_mode=None
                    ),
                ),
            )
            self._inline_id = sent.inline_message_id
            return
        try:
            await self.bot.edit_message_text(
                text=text, inline_message_id=self._inline_id, entities=entities, parse_mode=None
            )
        except TelegramBadRequest as exc:
            if "message is not modified" not in str(exc):
                raise


def _one_message(rendered: Rendered) -> Rendered:
    """The answer as one message: its first part, marked as cut when there is more."""
    parts = split_rendered(rendered, 4096 - len(CUT))
    if len(parts) <= 1:
        return parts[0] if parts else rendered
    first = parts[0]
    return Rendered(first.text + CUT, first.entities)
