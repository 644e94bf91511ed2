"""Shows an answer while it is generated: drafts in private chats, else one edited message."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from aiogram import Bot
from aiogram.exceptions import (
    TelegramBadRequest,
    TelegramNetworkError,
    TelegramRetryAfter,
)

from app.delivery.split import MESSAGE_LIMIT, split_message, telegram_length

log = logging.getLogger(__name__)

# Bound on how long a final message may wait out Telegram's flood control.
MAX_RETRY_AFTER = 30.0
ELLIPSIS = "…"


@dataclass(slots=True)
class DraftSupport:
    """Whether this bot may send drafts; learnt from the first refusal, kept for the process."""

    available: bool = True


@dataclass(slots=True)
class AnswerStream:
    """One answer on its way to one chat.

    `show()` is called with the whole text so far as often as text arrives; it sends at most
    one update per `interval`. `finish()` sends the final text, split into messages that fit.
    """

    bot: Bot
    chat_id: int
    draft_id: int
    drafts: DraftSupport
    interval: float = 1.0
    clock: Callable[[], float] = time.monotonic
    _next_at: float = 0.0
    _shown: str = ""
    _message_id: int | None = None  # the message being edited, when drafts are refused
    calls: int = field(default=0)

    async def show(self, text: str) -> None:
        now = self.clock()
        if now < self._next_at or not text.strip():
            return
        preview = _preview(text)
        if preview == self._shown:
            return
        self._next_at = now + self.interval
        try:
            await self._send_preview(preview)
        except TelegramRetryAfter as exc:
            # A preview can be skipped; the next one goes out once Telegram allows it.
            self._next_at = now + exc.retry_after
        except TelegramNetworkError as exc:
            log.warning("Preview for chat %s not sent: %s", self.chat_id, exc)

    async def _send_preview(self, preview: str) -> None:
        if self.drafts.available:
            try:
                self.calls += 1
                await self.bot.send_message_draft(
                    chat_id=self.chat_id, draft_id=self.draft_id, text=preview, parse_mode=None
                )
                self._shown = preview
                return
            except TelegramBadRequest as exc:
                log.info("Drafts refused (%s); streaming by editing a message instead", exc)
                self.drafts.available = False
        self.calls += 1
        if self._message_id is None:
            sent = await self.bot.send_message(self.chat_id, preview, parse_mode=None)
            self._message_id = sent.message_id
        else:
            await self._edit(preview)
        self._shown = preview

    async def finish(self, text: str) -> None:
        """Deliver the complete text; the preview message, if any, becomes its first part."""
        parts = split_message(text)
        if self._message_id is not None and parts:
            first, *parts = parts
            if first != self._shown:
                await self._final(lambda: self._edit(first))
        for part in parts:
            await self._final(lambda part=part: self._send(part))  # type: ignore[misc]

    async def _send(self, text: str) -> None:
        self.calls += 1
        await self.bot.send_message(self.chat_id, text, parse_mode=None)

    async def _edit(self, text: str) -> None:
        self.calls += 1
        try:
            await self.bot.edit_message_text(
                text=text, chat_id=self.chat_id, message_id=self._message_id, parse_mode=None
            )
        except TelegramBadRequest as exc:
            if "message is not modified" not in str(exc):
                raise

    async def _final(self, call: Callable[[], object]) -> None:
        # The final text must arrive: wait out flood control (bounded) and try again.
        deadline = self.clock() + MAX_RETRY_AFTER
        while True:
            try:
                await call()  # type: ignore[misc]
                return
            except TelegramRetryAfter as exc:
                if self.clock() + exc.retry_after > deadline:
                    raise
                await asyncio.sleep(exc.retry_after)


def _preview(text: str) -> str:
    """What fits in one message: the newest part of a long answer, marked as continuing."""
    if telegram_length(text) <= MESSAGE_LIMIT:
        return text
    tail = split_message(text, MESSAGE_LIMIT - 2)[-1]
    return ELLIPSIS + " " + tail
