"""What goes under a chat answer: the Continue button of one cut at the length limit."""

from __future__ import annotations

from aiogram.types import InlineKeyboardMarkup
from aiogram.utils.keyboard import InlineKeyboardBuilder

from app import texts
from app.keyboards.callbacks import ContinueButton


def continue_keyboard(answer_id: int) -> InlineKeyboardMarkup:
    keyboard = InlineKeyboardBuilder()
    keyboard.button(text=texts.continue_button(), callback_data=ContinueButton(answer_id=answer_id))
    return keyboard.as_markup()
