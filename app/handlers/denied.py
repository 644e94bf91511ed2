"""Everything else from a user without access: their id and how to get access."""

from __future__ import annotations

from aiogram import Router
from aiogram.types import CallbackQuery, Message

from app import texts
from app.services.users import UserContext


async def no_access(message: Message, user: UserContext) -> None:
    await message.answer(texts.NO_ACCESS.format(user_id=user.id))


async def stale_button(callback: CallbackQuery) -> None:
    # No keyboard of ours is open to this user: an old or forged button.
    await callback.answer(texts.STALE_BUTTON, show_alert=True)


def create_router() -> Router:
    router = Router(name=__name__)
    router.message.register(no_access)
    router.callback_query.register(stale_button)
    return router
