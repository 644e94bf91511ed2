"""Anything a dialog did not take while the user is in it: say where they are and how out.

Nothing is lost: the message is not sent to the model by mistake, and the dialog stays
where it was.
"""

from __future__ import annotations

from aiogram import Router
from aiogram.filters import StateFilter
from aiogram.fsm.context import FSMContext
from aiogram.types import Message

from app import texts
from app.fsm.hints import dialog_name, expected_input


async def in_dialog(message: Message, state: FSMContext) -> None:
    current = await state.get_state() or ""
    await message.answer(texts.in_dialog(dialog_name(current), expected_input(current)))


def create_router() -> Router:
    router = Router(name=__name__)
    router.message.register(in_dialog, ~StateFilter(None))
    return router
