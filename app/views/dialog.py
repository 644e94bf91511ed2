"""Showing a dialog's screen: one message, edited in place while the user presses buttons."""

from __future__ import annotations

import contextlib
from dataclasses import dataclass

from aiogram import Bot
from aiogram.exceptions import TelegramBadRequest
from aiogram.types import CallbackQuery, InlineKeyboardMarkup


@dataclass(frozen=True, slots=True)
class Screen:
    """What the dialog message shows."""

    text: str
    markup: InlineKeyboardMarkup | None = None


async def edit(bot: Bot, chat_id: int, message_id: int | None, screen: Screen) -> int:
    """Show `screen` in the dialog message; a message that can't be edited is replaced."""
    if message_id is not None:
        try:
            await bot.edit_message_text(
                text=screen.text,
                chat_id=chat_id,
                message_id=message_id,
                reply_markup=screen.markup,
            )
            return message_id
        except TelegramBadRequest as exc:
            if "message is not modified" in str(exc):
                return message_id
    sent = await bot.send_message(chat_id, screen.text, reply_markup=screen.markup)
    return sent.message_id


async def replace(bot: Bot, chat_id: int, message_id: int | None, screen: Screen) -> int:
    """After the user typed something, show the screen below it and remove the old one,
    so the dialog stays one message at the bottom of the chat."""
    sent = await bot.send_message(chat_id, screen.text, reply_markup=screen.markup)
    if message_id is not None:
        try:
            await bot.delete_message(chat_id, message_id)
        except TelegramBadRequest:
            # Too old to delete (48 h) or already gone: at least take its buttons away.
            with contextlib.suppress(TelegramBadRequest):
                await bot.edit_message_reply_markup(
                    chat_id=chat_id, message_id=message_id, reply_markup=None
                )
    return sent.message_id


async def answer_with(callback: CallbackQuery, bot: Bot, screen: Screen) -> None:
    """A button was pressed: show `screen` in the message it is under, and answer it."""
    message_id = callback.message.message_id if callback.message else None
    await edit(bot, callback.from_user.id, message_id, screen)
    await callback.answer()
