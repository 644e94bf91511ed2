"""What test modules import (fixtures stay in conftest.py): the ids and token the fakes
know, the real bot polling the fake Telegram server, and a user's chat with it."""

from __future__ import annotations

import asyncio
import os
from collections.abc import Awaitable, Callable
from typing import Any

import pytest
from aiogram import Bot, Dispatcher
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.config import Settings
from app.factory import create_bot, create_dispatcher, resources_of
from tests.fakes import FakeTelegram
from tests.fakes.telegram import SentMessage

TOKEN = "123456:TEST-token"
API_KEY = "test-key"
ADMIN = 1000
ALLOWED = 2000
STRANGER = 3000


# --- services that may be absent on a developer's machine -----------------------------------


def services_required() -> bool:
    """CI sets TEST_REQUIRE_SERVICES=1: a skipped PostgreSQL/Redis test is then a failure."""
    return os.environ.get("TEST_REQUIRE_SERVICES") == "1"


def skip_or_fail(reason: str) -> None:
    if services_required():
        pytest.fail(f"{reason} (TEST_REQUIRE_SERVICES=1 forbids skipping)")
    pytest.skip(reason)


# --- the bot under test ---------------------------------------------------------------------


class RunningBot:
    """The real dispatcher polling the fake Telegram server, as `python -m app` runs it."""

    def __init__(self, settings: Settings, telegram: FakeTelegram, **options: Any) -> None:
        self.settings = settings
        self.telegram = telegram
        self.options = {"stream_interval": 0.05, **options}
        self.bot: Bot | None = None
        self.dp: Dispatcher | None = None
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> RunningBot:
        self.bot = create_bot(self.settings)
        self.dp = create_dispatcher(self.settings, **self.options)
        polls_before = len(self.telegram.calls_of("getUpdates"))
        self._task = asyncio.create_task(
            self.dp.start_polling(self.bot, handle_signals=False, polling_timeout=5)
        )
        await self.telegram.wait_for(
            lambda: (
                len(self.telegram.calls_of("getUpdates")) > polls_before
                or (self._task is not None and self._task.done())
            ),
            timeout=20,
        )
        if self._task.done():
            self._task.result()
        return self

    async def stop(self) -> None:
        if self.dp is not None and self._task is not None and not self._task.done():
            await self.dp.stop_polling()
        if self._task is not None:
            await asyncio.wait_for(self._task, timeout=20)

    async def idle(self, timeout: float = 15.0) -> None:
        """Wait until every pushed update has been fetched and fully handled."""
        assert self.dp is not None
        inflight = resources_of(self.dp).inflight
        quiet = 0
        async with asyncio.timeout(timeout):
            while quiet < 3:
                await asyncio.sleep(0.01)
                busy = self.telegram.pending_updates or inflight.count
                quiet = 0 if busy else quiet + 1

    @property
    def pool(self) -> async_sessionmaker[AsyncSession]:
        assert self.dp is not None
        return resources_of(self.dp).pool


StartBot = Callable[..., Awaitable[RunningBot]]
"""The `start_bot` fixture: starts a `RunningBot` (with the test's settings unless given)."""


# --- a user talking to it -------------------------------------------------------------------


class UserChat:
    """One user's private chat with the bot."""

    def __init__(self, bot: RunningBot, telegram: FakeTelegram, user_id: int) -> None:
        self.bot = bot
        self.telegram = telegram
        self.user_id = user_id

    async def send(self, text: str | None = None, **extra: Any) -> SentMessage:
        """Send a message; returns the bot's newest message once the update is handled."""
        self.telegram.push_message(self.user_id, text, **extra)
        await self.bot.idle()
        return self.last

    async def send_document(self, content: bytes, file_name: str) -> SentMessage:
        self.telegram.push_document(self.user_id, content, file_name)
        await self.bot.idle()
        return self.last

    async def press(self, label: str, message: SentMessage | None = None) -> str | None:
        """Press the button whose text contains `label` on the newest message that has
        one (or on `message`); returns the callback answer's text."""
        message = message or self.with_button(label)
        return await self.press_data(self.button_data(message, label), message.message_id)

    async def press_data(self, data: str, message_id: int) -> str | None:
        update = self.telegram.push_callback(self.user_id, data, message_id)
        await self.bot.idle()
        answer = self.telegram.callback_answers.get(update["callback_query"]["id"])
        return None if answer is None else answer.get("text")

    @property
    def messages(self) -> list[SentMessage]:
        return self.telegram.sent_messages(self.user_id)

    @property
    def last(self) -> SentMessage:
        return self.messages[-1]

    def with_button(self, label: str) -> SentMessage:
        for message in reversed(self.messages):
            if any(label in text for text, _ in buttons(message)):
                return message
        raise AssertionError(f"no message has a button {label!r}; last: {self.last.text!r}")

    @staticmethod
    def button_data(message: SentMessage, label: str) -> str:
        for text, data in buttons(message):
            if label in text:
                return data
        raise AssertionError(f"no button {label!r} in {buttons(message)}")


def buttons(message: SentMessage) -> list[tuple[str, str]]:
    markup = message.reply_markup or {}
    return [
        (button["text"], button.get("callback_data", ""))
        for row in markup.get("inline_keyboard", [])
        for button in row
    ]
