"""Driving a chat with the running bot the way a user does: type, press buttons, read."""

from __future__ import annotations

from typing import Any

from tests.conftest import RunningBot
from tests.fakes import FakeTelegram
from tests.fakes.telegram import SentMessage


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
