"""/new_persona: name, description, optional first memory, then an offer to switch to it.

Nothing is saved until the user presses Done, so a cancelled dialog leaves nothing behind.
"""

from __future__ import annotations

from aiogram import Bot, F, Router
from aiogram.dispatcher.event.handler import CallbackType
from aiogram.filters import Command, StateFilter
from aiogram.fsm.context import FSMContext
from aiogram.fsm.state import State
from aiogram.types import CallbackQuery, InlineKeyboardMarkup, Message
from aiogram.utils.i18n import gettext as _
from aiogram.utils.keyboard import InlineKeyboardBuilder
from sqlalchemy.ext.asyncio import AsyncSession

from app import texts
from app.domain.enums import MemoryKind
from app.domain.users import UserContext
from app.filters import ActiveNewPersona
from app.fsm.personas import NewPersonaData, NewPersonaDialog
from app.keyboards.callbacks import NewPersonaAction, NewPersonaButton
from app.services.personas import PROMPT_MAX, PersonaError, PersonaService, check_text
from app.views import dialog
from app.views.dialog import Screen

Dialog = NewPersonaDialog


def _buttons(*items: tuple[str, NewPersonaAction], persona_id: int = 0) -> InlineKeyboardMarkup:
    keyboard = InlineKeyboardBuilder()
    for text, action in items:
        keyboard.button(
            text=text, callback_data=NewPersonaButton(action=action, persona_id=persona_id)
        )
    keyboard.adjust(2)
    return keyboard.as_markup()


def _memory_screen(draft: NewPersonaData, personas: PersonaService) -> Screen:
    memory = [(MemoryKind(k), t, a) for k, t, a in draft.memory]
    tokens = personas.new_memory_tokens(draft.prompt or "", memory)
    markup = _buttons(
        (_("➕ Fact"), NewPersonaAction.ADD_FACT),
        (_("➕ Question/answer"), NewPersonaAction.ADD_QA),
        (_("✅ Done"), NewPersonaAction.DONE),
    )
    return Screen(texts.new_persona_memory(draft.name or "", draft.memory, tokens), markup)


async def start(message: Message, state: FSMContext) -> None:
    await message.answer(texts.new_persona_name())
    await state.set_state(Dialog.typing_name)
    await state.set_data(NewPersonaData().model_dump())


async def on_name(
    message: Message, state: FSMContext, session: AsyncSession, personas: PersonaService
) -> None:
    try:
        name = await personas.free_name(session, message.text or "")
    except PersonaError as exc:
        await message.answer(texts.try_again(str(exc)))
        return
    await message.answer(texts.new_persona_prompt(name))
    await state.update_data(name=name)
    await state.set_state(Dialog.typing_prompt)


async def on_prompt(
    message: Message, draft: NewPersonaData, state: FSMContext, personas: PersonaService, bot: Bot
) -> None:
    try:
        draft.prompt = check_text(message.text or "", PROMPT_MAX)
        screen = _memory_screen(draft, personas)
    except PersonaError as exc:
        await message.answer(texts.try_again(str(exc)))
        return
    draft.menu_id = await dialog.replace(bot, message.chat.id, None, screen)
    await state.set_data(draft.model_dump())
    await state.set_state(Dialog.adding_memory)


async def on_add(
    callback: CallbackQuery,
    callback_data: NewPersonaButton,
    draft: NewPersonaData,
    state: FSMContext,
    bot: Bot,
) -> None:
    fact = callback_data.action is NewPersonaAction.ADD_FACT
    text = texts.new_persona_fact if fact else texts.new_persona_question
    screen = Screen(text(draft.name or ""))
    await dialog.edit(bot, callback.from_user.id, draft.menu_id, screen)
    await state.set_state(Dialog.typing_fact if fact else Dialog.typing_question)
    await callback.answer()


async def on_question(message: Message, draft: NewPersonaData, state: FSMContext, bot: Bot) -> None:
    try:
        question = check_text(message.text or "")
    except PersonaError as exc:
        await message.answer(texts.try_again(str(exc)))
        return
    text = texts.new_persona_answer(draft.name or "", question)
    menu_id = await dialog.replace(bot, message.chat.id, draft.menu_id, Screen(text))
    await state.update_data(question=question, menu_id=menu_id)
    await state.set_state(Dialog.typing_answer)


async def on_memory_text(
    message: Message, draft: NewPersonaData, state: FSMContext, personas: PersonaService, bot: Bot
) -> None:
    """A fact, or a pair's answer: validated and priced, then back to the memory screen."""
    is_fact = await state.get_state() == Dialog.typing_fact.state
    try:
        text = check_text(message.text or "")
        entry = ("fact", text, None) if is_fact else ("qa", draft.question or "", text)
        candidate = draft.model_copy(update={"memory": [*draft.memory, entry], "question": None})
        screen = _memory_screen(candidate, personas)
    except PersonaError as exc:
        await message.answer(texts.try_again(str(exc)))
        return
    candidate.menu_id = await dialog.replace(bot, message.chat.id, draft.menu_id, screen)
    await state.set_data(candidate.model_dump())
    await state.set_state(Dialog.adding_memory)


async def on_done(
    callback: CallbackQuery,
    draft: NewPersonaData,
    state: FSMContext,
    session: AsyncSession,
    user: UserContext,
    personas: PersonaService,
    bot: Bot,
) -> None:
    memory = [(MemoryKind(k), t, a) for k, t, a in draft.memory]
    try:
        ref = await personas.create(
            session,
            owner_id=user.id,
            name=draft.name or "",
            prompt=draft.prompt or "",
            memory=memory,
        )
    except PersonaError as exc:
        await session.rollback()
        await callback.answer(texts.not_saved(str(exc)), show_alert=True)
        return
    markup = _buttons(
        (_("▶ Talk to it now"), NewPersonaAction.SWITCH),
        (_("Later"), NewPersonaAction.STAY),
        persona_id=ref.id,
    )
    screen = Screen(texts.new_persona_created(ref.name), markup)
    await dialog.edit(bot, callback.from_user.id, draft.menu_id, screen)
    await state.update_data(persona_id=ref.id)
    await state.set_state(Dialog.offering_switch)
    await callback.answer(texts.saved())


async def on_switch_offer(
    callback: CallbackQuery,
    callback_data: NewPersonaButton,
    draft: NewPersonaData,
    state: FSMContext,
    session: AsyncSession,
    user: UserContext,
    personas: PersonaService,
    bot: Bot,
) -> None:
    name = draft.name or ""
    if callback_data.action is NewPersonaAction.SWITCH and draft.persona_id:
        await personas.switch(session, user.id, draft.persona_id)
        text = texts.switched(name)
    else:
        text = texts.stayed(name)
    await dialog.edit(bot, callback.from_user.id, draft.menu_id, Screen(text))
    await state.clear()
    await callback.answer()


def create_router() -> Router:
    router = Router(name=__name__)
    typed = (F.text, ~F.text.startswith("/"))
    router.message.register(start, Command("new_persona"), StateFilter(None))
    router.message.register(on_name, StateFilter(Dialog.typing_name), *typed)
    router.message.register(
        on_prompt, StateFilter(Dialog.typing_prompt), *typed, ActiveNewPersona()
    )
    router.message.register(
        on_question, StateFilter(Dialog.typing_question), *typed, ActiveNewPersona()
    )
    router.message.register(
        on_memory_text,
        StateFilter(Dialog.typing_fact, Dialog.typing_answer),
        *typed,
        ActiveNewPersona(),
    )

    def button(handler: CallbackType, state: State, *actions: NewPersonaAction) -> None:
        router.callback_query.register(
            handler,
            NewPersonaButton.filter(F.action.in_(actions)),
            StateFilter(state),
            ActiveNewPersona(),
        )

    button(on_add, Dialog.adding_memory, NewPersonaAction.ADD_FACT, NewPersonaAction.ADD_QA)
    button(on_done, Dialog.adding_memory, NewPersonaAction.DONE)
    button(on_switch_offer, Dialog.offering_switch, NewPersonaAction.SWITCH, NewPersonaAction.STAY)
    return router
