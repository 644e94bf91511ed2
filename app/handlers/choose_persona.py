"""/persona: the personas this user may talk to, and switching between them."""

from __future__ import annotations

from aiogram import Bot, Router
from aiogram.filters import Command
from aiogram.types import CallbackQuery, InlineKeyboardMarkup, Message
from aiogram.utils.keyboard import InlineKeyboardBuilder
from sqlalchemy.ext.asyncio import AsyncSession

from app import texts
from app.domain.refs import PersonaRef
from app.domain.users import Preferences, UserContext
from app.keyboards.callbacks import PersonaChoice
from app.services.personas import PersonaService
from app.views import dialog
from app.views.dialog import Screen


def _keyboard(personas: list[PersonaRef], current: int) -> InlineKeyboardMarkup:
    keyboard = InlineKeyboardBuilder()
    for ref in personas:
        mark = "✓ " if ref.id == current else ""
        keyboard.button(text=mark + ref.name, callback_data=PersonaChoice(persona_id=ref.id))
    keyboard.adjust(2)
    return keyboard.as_markup()


async def list_personas(
    message: Message,
    session: AsyncSession,
    user: UserContext,
    preferences: Preferences,
    personas: PersonaService,
) -> None:
    usable = await personas.usable(session, user)
    current = preferences.persona
    text = texts.choose_persona(current.name)
    await message.answer(text, reply_markup=_keyboard(usable, current.id))


async def choose(
    callback: CallbackQuery,
    callback_data: PersonaChoice,
    session: AsyncSession,
    user: UserContext,
    personas: PersonaService,
    bot: Bot,
) -> None:
    usable = await personas.usable(session, user)
    chosen = next((ref for ref in usable if ref.id == callback_data.persona_id), None)
    if chosen is None:
        await callback.answer(texts.persona_unavailable(), show_alert=True)
        return
    await personas.switch(session, user.id, chosen.id)
    screen = Screen(texts.switched(chosen.name), _keyboard(usable, chosen.id))
    message_id = callback.message.message_id if callback.message else None
    await dialog.edit(bot, callback.from_user.id, message_id, screen)
    await callback.answer()


def create_router() -> Router:
    router = Router(name=__name__)
    router.message.register(list_personas, Command("persona"))
    router.callback_query.register(choose, PersonaChoice.filter())
    return router
