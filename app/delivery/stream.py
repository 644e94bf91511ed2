"""Shows an answer while it is generated: drafts in private chats, else one edited message.

Text goes out as rendered entities (app/delivery/render.py), never through a parse mode, so
the model's Markdown cannot make Telegram refuse a message; if Telegram refuses one anyway,
the same text goes again without formatting.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from aiogram import Bot
from aiogram.exceptions import (
    TelegramAPIError,
    TelegramBadRequest,
    TelegramNotFound,
    TelegramRetryAfter,
)
from aiogram.types import InlineKeyboardMarkup, MessageEntity, ReplyParameters

from app.delivery.errors import NotBotApiAnswer, brief
from app.delivery.pacing import ChatPacer
from app.delivery.render import Rendered, render, with_reasoning
from app.delivery.split import split_rendered, telegram_length

log = logging.getLogger(__name__)

# Below this, a part Telegram calls too long is not its length's fault.
MIN_PART = 256


@dataclass(slots=True)
class DraftSupport:
    """Where this bot may send drafts, learnt from refusals and kept for the process: nowhere
    once the Bot API server shows it does not know the method (an older self-hosted one),
    not in a chat that refused one (other chats go on with drafts)."""

    available: bool = True
    refused_chats: set[int] = field(default_factory=set)

    def usable(self, chat_id: int) -> bool:
        return self.available and chat_id not in self.refused_chats

    def refused(self, chat_id: int, exc: Exception) -> bool:
        """Whether `exc`, raised by sendMessageDraft, means no drafts (in this chat or at
        all); remembered. Anything else (a 5xx, the network) skips one preview only."""
        if _unknown_method(exc):
            if self.available:
                log.warning(
                    "The Bot API server does not know sendMessageDraft (%s); answers stream "
                    "by editing a message instead",
                    brief(exc),
                )
            self.available = False
            return True
        if isinstance(exc, TelegramBadRequest) and "entities" not in exc.message.lower():
            self.refused_chats.add(chat_id)
            log.info("Chat %s refused a draft (%s); it gets edits", chat_id, brief(exc))
            return True
        return False


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
    # Drafts get Telegram's stop button (Bot API 10.3 `can_stop`): pressing it sends the bot
    # a `stopped_message_generation` update with this draft id, and the draft goes away
    # (we do not ask for `keep_on_stop`: what arrived comes back as the final message).
    can_stop: bool = False
    # In a group: the asker's message the answer replies to, and the forum topic it is in.
    # Groups get one edited message, never drafts (they are for private chats).
    reply_to: int | None = None
    thread_id: int | None = None
    # Keeps a group under Telegram's per-group limit (app/delivery/pacing.py).
    pacer: ChatPacer | None = None
    clock: Callable[[], float] = time.monotonic
    _next_at: float = 0.0
    _shown: str = ""
    _message_id: int | None = None  # the message being edited, when drafts are refused
    _preview_failures: int = 0

    async def show(self, text: str, *, now: bool = False) -> None:
        """A preview of the answer so far, at most one per `interval`; `now`: this one
        whatever the interval (what the bot is doing changed, as when a tool starts)."""
        clock = self.clock()
        if (clock < self._next_at and not now) or not text.strip():
            return
        # The newest part of a long answer is what is being written. A bare "##" or "```"
        # renders to nothing yet.
        parts = split_rendered(render(text))
        if not parts or parts[-1].text == self._shown:
            return
        preview = parts[-1]
        self._next_at = clock + self.interval
        try:
            await self._send_preview(preview)
            self._shown = preview.text
        except TelegramRetryAfter as exc:
            # A preview can be skipped; the next one goes out once Telegram allows it.
            self._next_at = clock + exc.retry_after
        except Exception as exc:  # noqa: BLE001 - a preview may fail in any way, never the answer
            self._preview_failed(exc)

    def _preview_failed(self, exc: Exception) -> None:
        """Logged once per answer; the final message does not depend on any preview."""
        if isinstance(exc, TelegramBadRequest) and "message to edit not found" in exc.message:
            self._message_id = None  # deleted meanwhile: the answer comes as a new message
        self._preview_failures += 1
        log.log(
            logging.WARNING if self._preview_failures == 1 else logging.DEBUG,
            "Preview for chat %s not shown (%s); the answer follows when it is complete",
            self.chat_id,
            brief(exc),
        )

    async def _send_preview(self, preview: Rendered) -> None:
        if self.reply_to is None and self.drafts.usable(self.chat_id):
            try:
                await self.bot.send_message_draft(
                    chat_id=self.chat_id,
                    draft_id=self.draft_id,
                    message_thread_id=self.thread_id,
                    text=preview.text,
                    entities=preview.entities or None,
                    parse_mode=None,
                    can_stop=self.can_stop or None,
                )
                return
            except (TelegramAPIError, NotBotApiAnswer) as exc:
                if not self.drafts.refused(self.chat_id, exc):
                    raise
        if self.pacer is not None and not self.pacer.may_preview(self.chat_id):
            return  # the room left this minute is for final messages
        await self._put(preview.text, preview.entities)

    async def finish(
        self, text: str, keyboard: InlineKeyboardMarkup | None = None, *, reasoning: str = ""
    ) -> None:
        """Deliver the complete text; the preview message, if any, becomes its first part,
        and `keyboard` goes under the last part. A `reasoning` comes above the text, folded
        in an expandable quote."""
        rendered = render(text)
        if reasoning.strip():
            rendered = with_reasoning(rendered, reasoning)
        parts = split_rendered(rendered)
        for index, part in enumerate(parts):
            await self._final(part, keyboard if index == len(parts) - 1 else None)

    async def _final(self, part: Rendered, keyboard: InlineKeyboardMarkup | None = None) -> None:
        """Send one part for good (the bot session waits out flood control and retries
        server errors). Formatting that Telegram refuses is dropped rather than the text;
        a part it finds too long (a server with a lower limit) goes in halves."""
        if self.pacer is not None:
            await self.pacer.final_slot(self.chat_id)
        try:
            try:
                await self._put_for_good(part.text, part.entities or None, keyboard)
            except TelegramBadRequest as exc:
                if not part.entities or _too_long(exc):
                    raise
                log.warning("Telegram refused formatting (%s); sending plain text", exc)
                await self._put_for_good(part.text, None, keyboard)
        except TelegramBadRequest as exc:
            length = telegram_length(part.text)
            if not _too_long(exc) or length < MIN_PART:
                raise
            log.warning("Telegram found %d characters too long; sending halves", length)
            halves = split_rendered(part, length // 2)
            for index, half in enumerate(halves):
                await self._final(half, keyboard if index == len(halves) - 1 else None)
            return
        self._message_id = None  # the next part is a message of its own

    async def _put_for_good(
        self,
        text: str,
        entities: list[MessageEntity] | None,
        keyboard: InlineKeyboardMarkup | None,
    ) -> None:
        """`_put` for the final answer: a preview message the user deleted (or one that can
        no longer be edited) gives way to a new message, rather than the answer to nothing."""
        try:
            await self._put(text, entities, keyboard)
        except TelegramBadRequest as exc:
            if self._message_id is None or not _gone(exc):
                raise
            log.info("Preview in chat %s is gone (%s); sending anew", self.chat_id, brief(exc))
            self._message_id = None
            await self._put(text, entities, keyboard)

    async def _put(
        self,
        text: str,
        entities: list[MessageEntity] | None,
        keyboard: InlineKeyboardMarkup | None = None,
    ) -> None:
        """Edit the message being streamed into, or send a new one."""
        if self._message_id is None:
            reply = None
            if self.reply_to is not None:
                # The question may be deleted meanwhile: the answer goes anyway.
                reply = ReplyParameters(message_id=self.reply_to, allow_sending_without_reply=True)
            sent = await self.bot.send_message(
                self.chat_id,
                text,
                entities=entities,
                parse_mode=None,
                reply_markup=keyboard,
                reply_parameters=reply,
                message_thread_id=self.thread_id,
            )
            self._message_id = sent.message_id
            return
        await _ignore_not_modified(
            self.bot.edit_message_text(
                text=text,
                chat_id=self.chat_id,
                message_id=self._message_id,
                entities=entities,
                parse_mode=None,
                reply_markup=keyboard,
            )
        )


def _unknown_method(exc: Exception) -> bool:
    """A Bot API server's answer for a method it does not know: 404 (Telegram answers "Not
    Found"; a proxy may answer its own 404 page), or a "method not found" description."""
    if isinstance(exc, TelegramNotFound):
        return True
    if isinstance(exc, NotBotApiAnswer):
        return exc.status_code == 404
    return isinstance(exc, TelegramAPIError) and "method not found" in exc.message.lower()


def _gone(exc: TelegramBadRequest) -> bool:
    text = exc.message.lower()
    return "message to edit not found" in text or "message can't be edited" in text


def _too_long(exc: TelegramBadRequest) -> bool:
    text = str(exc).lower()
    return "message is too long" in text or "message_too_long" in text


async def _ignore_not_modified(call: Awaitable[object]) -> None:
    try:
        await call
    except TelegramBadRequest as exc:
        if "message is not modified" not in str(exc):
            raise
