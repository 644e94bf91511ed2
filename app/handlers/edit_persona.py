"""/edit_bot: the persona editor, an inline-keyboard dialog on one message.

Every button handler gets `editor` (the dialog's data) from the ActiveEditor filter, which
lets through only buttons of the editor message open now; and `view`, the persona, from
`_editable`, which re-checks on every step that it exists and the user may still edit it.
"""

from __future__ import annotations

from aiogram import Bot, F, Router
from aiogram.dispatcher.event.handler import CallbackType
from aiogram.filters import Command, StateFilter
from aiogram.fsm.context import FSMContext
from aiogram.fsm.state import State
from aiogram.types import CallbackQuery, Message
from sqlalchemy.ext.asyncio import AsyncSession

from app import texts
from app.domain.enums import MemoryKind
from app.domain.personas import PersonaView
from app.domain.users import Preferences, UserContext
from app.filters import ActiveEditor
from app.fsm.personas import EditorData, EditPersonaDialog
from app.keyboards.callbacks import EditorAction, EditorButton, EntryAction, EntryButton
from app.services.personas import PersonaError, PersonaService, check_text
from app.views import dialog
from app.views import persona_editor as screens
from app.views.dialog import Screen
from app.views.persona_editor import Asked

Dialog = EditPersonaDialog


async def open_editor(
    message: Message,
    state: FSMContext,
    session: AsyncSession,
    user: UserContext,
    preferences: Preferences,
    personas: PersonaService,
    bot: Bot,
) -> None:
    view = await personas.view(session, preferences.persona.id)
    if not personas.can_edit(user, view):
        await message.answer(texts.cannot_edit(view.name))
        return
    menu_id = await dialog.edit(bot, message.chat.id, None, screens.overview(view, 0))
    await state.set_state(Dialog.browsing)
    await state.set_data(EditorData(persona_id=view.id, menu_id=menu_id).model_dump())


async def _editable(
    event: CallbackQuery | Message,
    editor: EditorData,
    session: AsyncSession,
    user: UserContext,
    personas: PersonaService,
) -> PersonaView | None:
    """The persona, if it still exists and this user may still edit it; else says why."""
    try:
        view = await personas.view(session, editor.persona_id)
        if personas.can_edit(user, view):
            return view
        problem = texts.cannot_edit(view.name)
    except PersonaError as exc:
        problem = str(exc)
    if isinstance(event, CallbackQuery):
        await event.answer(problem, show_alert=True)
    else:
        await event.answer(problem)
    return None


async def _show(
    bot: Bot, chat_id: int, state: FSMContext, editor: EditorData, screen: Screen, to: State
) -> None:
    await dialog.edit(bot, chat_id, editor.menu_id, screen)
    await state.set_state(to)


async def on_page(
    callback: CallbackQuery,
    callback_data: EditorButton,
    editor: EditorData,
    state: FSMContext,
    session: AsyncSession,
    user: UserContext,
    personas: PersonaService,
    bot: Bot,
) -> None:
    """Page, Back, Discard: the overview."""
    if view := await _editable(callback, editor, session, user, personas):
        screen = screens.overview(view, callback_data.page)
        await _show(bot, callback.from_user.id, state, editor, screen, Dialog.browsing)
        await state.update_data(page=callback_data.page, kind=None, text=None, answer=None)
        await callback.answer()


async def on_open_entry(
    callback: CallbackQuery,
    callback_data: EditorButton,
    editor: EditorData,
    state: FSMContext,
    session: AsyncSession,
    user: UserContext,
    personas: PersonaService,
    bot: Bot,
) -> None:
    if view := await _editable(callback, editor, session, user, personas):
        try:
            item = await personas.entry(session, view.id, callback_data.entry_id)
        except PersonaError as exc:
            await callback.answer(str(exc), show_alert=True)
            await _show(
                bot,
                callback.from_user.id,
                state,
                editor,
                screens.overview(view, editor.page),
                Dialog.browsing,
            )
            return
        screen = screens.entry(view, item, callback_data.page)
        await _show(bot, callback.from_user.id, state, editor, screen, Dialog.browsing)
        await callback.answer()


_ASK: dict[EditorAction, tuple[Asked, State, str | None]] = {
    EditorAction.ADD_FACT: (Asked.NEW_FACT, Dialog.typing_fact, "fact"),
    EditorAction.ADD_QA: (Asked.QUESTION, Dialog.typing_question, "qa"),
    EditorAction.NAME: (Asked.NAME, Dialog.typing_name, None),
    EditorAction.PROMPT: (Asked.PROMPT, Dialog.typing_prompt, None),
}


async def on_ask(
    callback: CallbackQuery,
    callback_data: EditorButton,
    editor: EditorData,
    state: FSMContext,
    session: AsyncSession,
    user: UserContext,
    personas: PersonaService,
    bot: Bot,
) -> None:
    """Add a fact or a pair, rename, new prompt: ask for the text."""
    if view := await _editable(callback, editor, session, user, personas):
        what, to, kind = _ASK[callback_data.action]
        current = {EditorAction.NAME: view.name, EditorAction.PROMPT: view.system_prompt}
        screen = screens.ask(view, what, editor.page, current.get(callback_data.action))
        await _show(bot, callback.from_user.id, state, editor, screen, to)
        await state.update_data(kind=kind, text=None, answer=None)
        await callback.answer()


async def on_share(
    callback: CallbackQuery,
    editor: EditorData,
    state: FSMContext,
    session: AsyncSession,
    user: UserContext,
    personas: PersonaService,
    bot: Bot,
) -> None:
    if view := await _editable(callback, editor, session, user, personas):
        await personas.set_shared(session, view.id, not view.shared)
        screen = screens.overview(await personas.view(session, view.id), editor.page)
        await _show(bot, callback.from_user.id, state, editor, screen, Dialog.browsing)
        await callback.answer(texts.shared() if not view.shared else texts.unshared())


async def on_save(
    callback: CallbackQuery,
    editor: EditorData,
    state: FSMContext,
    session: AsyncSession,
    user: UserContext,
    personas: PersonaService,
    bot: Bot,
) -> None:
    """The confirmed new entry is saved; the overview shows its last page."""
    if (view := await _editable(callback, editor, session, user, personas)) and editor.text:
        try:
            kind = MemoryKind(editor.kind or "")
            await personas.add_entry(session, view.id, kind, editor.text, editor.answer)
        except (PersonaError, ValueError) as exc:
            await session.rollback()
            await callback.answer(texts.not_saved(str(exc)), show_alert=True)
            return
        view = await personas.view(session, view.id)
        page = screens.pages(view) - 1
        await _show(
            bot, callback.from_user.id, state, editor, screens.overview(view, page), Dialog.browsing
        )
        await state.update_data(page=page, kind=None, text=None, answer=None)
        await callback.answer(texts.saved())


async def on_close(
    callback: CallbackQuery,
    editor: EditorData,
    state: FSMContext,
    session: AsyncSession,
    personas: PersonaService,
    bot: Bot,
) -> None:
    try:
        screen = screens.closed(await personas.view(session, editor.persona_id))
    except PersonaError as exc:
        screen = Screen(str(exc))
    await dialog.edit(bot, callback.from_user.id, editor.menu_id, screen)
    await state.clear()
    await callback.answer()


async def on_entry_change(
    callback: CallbackQuery,
    callback_data: EntryButton,
    editor: EditorData,
    state: FSMContext,
    session: AsyncSession,
    user: UserContext,
    personas: PersonaService,
    bot: Bot,
) -> None:
    """Up, down, delete (asks first), delete confirmed."""
    if not (view := await _editable(callback, editor, session, user, personas)):
        return
    action, entry_id = callback_data.action, callback_data.entry_id
    try:
        if action in (EntryAction.UP, EntryAction.DOWN):
            await personas.move_entry(
                session, view.id, entry_id, -1 if action is EntryAction.UP else 1
            )
        elif action is EntryAction.DELETE_YES:
            await personas.delete_entry(session, view.id, entry_id)
        view = await personas.view(session, view.id)
        if action is EntryAction.DELETE_YES:
            screen = screens.overview(view, editor.page)
        else:
            item = await personas.entry(session, view.id, entry_id)
            show = screens.confirm_delete if action is EntryAction.DELETE else screens.entry
            screen = show(view, item, editor.page)
    except PersonaError as exc:
        await callback.answer(str(exc), show_alert=True)
        screen = screens.overview(view, editor.page)
    await _show(bot, callback.from_user.id, state, editor, screen, Dialog.browsing)
    await callback.answer(texts.deleted() if action is EntryAction.DELETE_YES else None)


async def on_entry_edit(
    callback: CallbackQuery,
    callback_data: EntryButton,
    editor: EditorData,
    state: FSMContext,
    session: AsyncSession,
    user: UserContext,
    personas: PersonaService,
    bot: Bot,
) -> None:
    """Edit a fact's text, a pair's question or its answer: ask for the new text."""
    if not (view := await _editable(callback, editor, session, user, personas)):
        return
    try:
        item = await personas.entry(session, view.id, callback_data.entry_id)
    except PersonaError as exc:
        await callback.answer(str(exc), show_alert=True)
        return
    answer = callback_data.action is EntryAction.EDIT_ANSWER
    what = (
        Asked.ANSWER if answer else (Asked.TEXT if item.kind is MemoryKind.FACT else Asked.QUESTION)
    )
    screen = screens.ask(view, what, editor.page, item.answer if answer else item.text)
    await _show(bot, callback.from_user.id, state, editor, screen, Dialog.typing_entry_text)
    await state.update_data(entry_id=item.id, field="answer" if answer else "text")
    await callback.answer()


async def on_question(
    message: Message,
    editor: EditorData,
    state: FSMContext,
    session: AsyncSession,
    personas: PersonaService,
    bot: Bot,
) -> None:
    try:
        question = check_text(message.text or "")
    except PersonaError as exc:
        await message.answer(texts.try_again(str(exc)))
        return
    view = await personas.view(session, editor.persona_id)
    screen = screens.ask(view, Asked.ANSWER, editor.page)
    menu_id = await dialog.replace(bot, message.chat.id, editor.menu_id, screen)
    await state.update_data(text=question, menu_id=menu_id)
    await state.set_state(Dialog.typing_answer)


async def on_new_entry(
    message: Message,
    editor: EditorData,
    state: FSMContext,
    session: AsyncSession,
    personas: PersonaService,
    bot: Bot,
) -> None:
    """A new fact, or a pair's answer: validated, priced, then shown for confirmation."""
    is_fact = editor.kind == "fact"
    kind = MemoryKind.FACT if is_fact else MemoryKind.QA
    try:
        text = check_text((message.text if is_fact else editor.text) or "")
        answer = None if is_fact else check_text(message.text or "")
        cost, total = await personas.entry_cost(session, editor.persona_id, kind, text, answer)
    except PersonaError as exc:
        await message.answer(texts.try_again(str(exc)))
        return
    view = await personas.view(session, editor.persona_id)
    screen = screens.confirm_entry(view, kind, text, answer, cost, total)
    menu_id = await dialog.replace(bot, message.chat.id, editor.menu_id, screen)
    await state.update_data(text=text, answer=answer, menu_id=menu_id)
    await state.set_state(Dialog.confirming_entry)


async def on_new_text(
    message: Message,
    editor: EditorData,
    state: FSMContext,
    session: AsyncSession,
    user: UserContext,
    personas: PersonaService,
    bot: Bot,
) -> None:
    """A new name, system prompt, or entry text: saved at once when valid."""
    if not (view := await _editable(message, editor, session, user, personas)):
        return
    current, text = await state.get_state(), message.text or ""
    try:
        if current == Dialog.typing_name.state:
            await personas.rename(session, view.id, text)
        elif current == Dialog.typing_prompt.state:
            await personas.set_prompt(session, view.id, text)
        elif editor.entry_id is not None:
            changes = {"answer" if editor.field == "answer" else "text": text}
            await personas.update_entry(session, view.id, editor.entry_id, **changes)
        view = await personas.view(session, view.id)
        screen = screens.overview(view, editor.page)
        if current == Dialog.typing_entry_text.state and editor.entry_id is not None:
            screen = screens.entry(
                view, await personas.entry(session, view.id, editor.entry_id), editor.page
            )
    except PersonaError as exc:
        await session.rollback()
        await message.answer(texts.try_again(str(exc)))
        return
    menu_id = await dialog.replace(bot, message.chat.id, editor.menu_id, screen)
    await state.update_data(menu_id=menu_id)
    await state.set_state(Dialog.browsing)


def create_router() -> Router:
    router = Router(name=__name__)
    router.message.register(open_editor, Command("edit_bot"), StateFilter(None))

    def editor_button(handler: CallbackType, *actions: EditorAction) -> None:
        router.callback_query.register(
            handler, EditorButton.filter(F.action.in_(actions)), ActiveEditor()
        )

    editor_button(on_page, EditorAction.PAGE, EditorAction.BACK, EditorAction.DISCARD)
    editor_button(on_open_entry, EditorAction.OPEN)
    editor_button(on_ask, *_ASK)
    editor_button(on_share, EditorAction.SHARE)
    editor_button(on_close, EditorAction.CLOSE)
    router.callback_query.register(
        on_save,
        EditorButton.filter(F.action == EditorAction.SAVE),
        StateFilter(Dialog.confirming_entry),
        ActiveEditor(),
    )
    router.callback_query.register(
        on_entry_edit,
        EntryButton.filter(F.action.in_({EntryAction.EDIT, EntryAction.EDIT_ANSWER})),
        ActiveEditor(),
    )
    router.callback_query.register(on_entry_change, EntryButton.filter(), ActiveEditor())
    typed = (F.text, ~F.text.startswith("/"), ActiveEditor())
    router.message.register(on_question, StateFilter(Dialog.typing_question), *typed)
    router.message.register(
        on_new_entry, StateFilter(Dialog.typing_fact, Dialog.typing_answer), *typed
    )
    router.message.register(
        on_new_text,
        StateFilter(Dialog.typing_name, Dialog.typing_prompt, Dialog.typing_entry_text),
        *typed,
    )
    return router
