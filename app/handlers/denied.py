"""Everything else from a user without access, and buttons that are not for this user."""

from __future__ import annotations

from aiogram import Router
from aiogram.types import CallbackQuery, Message

from app import texts
from app.domain.users import UserContext
from app.views import access


async def no_access(message: Message, user: UserContext) -> None:
    await message.answer(access.blocked() if user.blocked else access.no_access(user.id))


async def stale_button(callback: CallbackQuery) -> None:
    # No keyboard of ours that this user may use is open: an old, forged or foreign button
    # (an admin's button pressed by someone who is no admin ends here too).
    await callback.answer(texts.stale_button(), show_alert=True)


def create_router() -> Router:
    router = Router(name=__name__)
    router.message.register(no_access)
    router.callback_query.register(stale_button)
    return router
