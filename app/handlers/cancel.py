"""/cancel: leaves whatever dialog the user is in, from any state."""

from __future__ import annotations

from aiogram import Router
from aiogram.filters import Command
from aiogram.fsm.context import FSMContext
from aiogram.types import Message, ReplyKeyboardRemove

from app import texts


async def cancel(message: Message, state: FSMContext) -> None:
    if await state.get_state() is None:
        await message.answer(texts.nothing_to_cancel())
        return
    await state.clear()
    await message.answer(texts.cancelled(), reply_markup=ReplyKeyboardRemove())


def create_router() -> Router:
    router = Router(name=__name__)
    router.message.register(cancel, Command("cancel"))
    return router
