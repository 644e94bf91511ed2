"""/memory shows what the persona has in mind; /mode picks chat or task; /forget erases."""

from __future__ import annotations

from aiogram import Bot, Router
from aiogram.filters import Command
from aiogram.types import CallbackQuery, InlineKeyboardMarkup, Message
from aiogram.utils.keyboard import InlineKeyboardBuilder
from sqlalchemy.ext.asyncio import AsyncSession

from app import texts
from app.domain.enums import MemoryMode
from app.domain.users import Preferences, UserContext
from app.handlers.chat import topic_of
from app.keyboards.callbacks import ForgetAllButton, ForgetButton, ForgetStep, ModeChoice
from app.memory.service import MemoryService
from app.services.chat import ChatService
from app.services.profile import ProfileService
from app.views import dialog
from app.views import profile as profile_views
from app.views.dialog import Screen
from app.views.memory import report_text


async def show_memory(
    message: Message,
    user: UserContext,
    preferences: Preferences,
    session: AsyncSession,
    memory: MemoryService,
    profile: ProfileService,
    chat: ChatService,
) -> None:
    s = preferences
    # The room the tools offered keep, as the request keeps it.
    offer = chat.tools.offer(s) if chat.tools is not None else None
    # The profile only ever in the user's own private chat.
    private = message.chat.type == "private"
    report = await memory.report(
        session,
        user.id,
        s.persona,
        s.model,
        s.mode,
        s.answer_length,
        place=topic_of(message),
        everywhere=s.recall_everywhere,
        profile=private and s.profile,
        tools=offer.reserve if offer is not None else 0,
    )
    if private:
        # Its own message, edited in place by its buttons; the report comes last.
        entries = await profile.entries(session, user.id) if s.profile else []
        screen = profile_views.profile(entries, s.profile)
        await message.answer(screen.text, reply_markup=screen.markup)
    await message.answer(report_text(report))


def _mode_keyboard(current: MemoryMode) -> InlineKeyboardMarkup:
    keyboard = InlineKeyboardBuilder()
    for mode in MemoryMode:
        mark = "✓ " if mode is current else ""
        keyboard.button(
            text=mark + texts.mode_name(mode.value), callback_data=ModeChoice(mode=mode)
        )
    return keyboard.as_markup()


async def show_modes(message: Message, preferences: Preferences) -> None:
    current = preferences.mode
    text = texts.mode_menu(current.value)
    await message.answer(text, reply_markup=_mode_keyboard(current))


async def choose_mode(
    callback: CallbackQuery,
    callback_data: ModeChoice,
    user: UserContext,
    session: AsyncSession,
    memory: MemoryService,
    bot: Bot,
) -> None:
    await memory.set_mode(session, user.id, callback_data.mode)
    text = texts.mode_set(callback_data.mode.value)
    message_id = callback.message.message_id if callback.message else None
    await dialog.edit(bot, user.id, message_id, Screen(text, _mode_keyboard(callback_data.mode)))
    await callback.answer()


async def ask_forget(
    message: Message,
    user: UserContext,
    preferences: Preferences,
    session: AsyncSession,
    memory: MemoryService,
    profile: ProfileService,
) -> None:
    # In a topic of the private chat, the topic's conversation: the topic itself stays.
    place = topic_of(message)
    conversation = await memory.conversation(session, user.id, preferences.persona.id, place)
    turns = await memory.stored_turns(session, conversation)
    if turns == 0 and conversation.summary is None:
        # This one is empty; what else the bot keeps about the user may still go.
        found = await profile.everything(session, user.id)
        others = found.facts > 0 or found.conversations > 1
        markup = profile_views.forget_everything_keyboard() if others else None
        await message.answer(texts.nothing_to_forget(), reply_markup=markup)
        return
    keyboard = InlineKeyboardBuilder()
    for label, confirm in ((texts.forget_yes(), True), (texts.forget_no(), False)):
        data = ForgetButton(conversation_id=conversation.id, confirm=confirm)
        keyboard.button(text=label, callback_data=data)
    keyboard.button(
        text=profile_views.forget_everything_button(),
        callback_data=ForgetAllButton(step=ForgetStep.ASK),
    )
    keyboard.adjust(2, 1)
    await message.answer(
        texts.forget_ask(preferences.persona.name, turns), reply_markup=keyboard.as_markup()
    )


async def forget(
    callback: CallbackQuery,
    callback_data: ForgetButton,
    user: UserContext,
    preferences: Preferences,
    session: AsyncSession,
    memory: MemoryService,
    bot: Bot,
) -> None:
    text = texts.forget_kept()
    if callback_data.confirm:
        # An old or forged button names a conversation that is gone, not the user's, or
        # not of the topic (or the plain chat) the button is in.
        message = callback.message
        place = topic_of(message) if isinstance(message, Message) else None
        if not await memory.forget(session, user.id, callback_data.conversation_id, place):
            await callback.answer(texts.stale_button(), show_alert=True)
            return
        text = texts.forgotten(preferences.persona.name)
    message_id = callback.message.message_id if callback.message else None
    await dialog.edit(bot, user.id, message_id, Screen(text, None))
    await callback.answer()


def create_router() -> Router:
    router = Router(name=__name__)
    # Every chat message passes this router on its way to the chat one: one check of the
    # command name turns it away before any handler's filters run (bench/load.py).
    router.message.filter(Command("memory", "mode", "forget"))
    router.message.register(show_memory, Command("memory"))
    router.message.register(show_modes, Command("mode"))
    router.message.register(ask_forget, Command("forget"))
    router.callback_query.register(choose_mode, ModeChoice.filter())
    router.callback_query.register(forget, ForgetButton.filter())
    return router
