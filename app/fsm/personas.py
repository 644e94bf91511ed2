"""The persona dialogs' states, their data, and what each state waits for."""

from __future__ import annotations

from aiogram.fsm.state import State, StatesGroup
from aiogram.utils.i18n import gettext as _
from aiogram.utils.i18n import lazy_gettext as __
from babel.support import LazyProxy
from pydantic import BaseModel, Field


class EditPersonaDialog(StatesGroup):
    """/edit_bot: the persona editor, one message edited in place."""

    browsing = State()
    typing_fact = State()
    typing_question = State()
    typing_answer = State()
    confirming_entry = State()
    typing_entry_text = State()
    typing_name = State()
    typing_prompt = State()


class NewPersonaDialog(StatesGroup):
    """/new_persona: name, prompt, optional first memory, then an offer to switch."""

    typing_name = State()
    typing_prompt = State()
    adding_memory = State()
    typing_fact = State()
    typing_question = State()
    typing_answer = State()
    offering_switch = State()


class ImportPersonaDialog(StatesGroup):
    """/import_persona: waits for the exported JSON file."""

    sending_file = State()


class EditorData(BaseModel):
    """What the editor remembers between steps (validated when read back from storage)."""

    persona_id: int
    menu_id: int | None = None  # the dialog's message, edited in place
    page: int = 0
    entry_id: int | None = None
    field: str = "text"  # which part of an entry is being edited: text or answer
    kind: str | None = None  # of the entry being added
    text: str | None = None  # a new entry's text (a pair's question) awaiting its answer
    answer: str | None = None


class NewPersonaData(BaseModel):
    """A persona under construction: nothing is saved until the user is done."""

    name: str | None = None
    prompt: str | None = None
    memory: list[tuple[str, str, str | None]] = Field(default_factory=list)
    question: str | None = None
    menu_id: int | None = None
    persona_id: int | None = None


# What each state waits for, told to a user who sends something else. Translated when
# told (lazy_gettext): this table is built at import, before any user's language is known.
_EXPECTED: dict[str | None, LazyProxy] = {
    EditPersonaDialog.browsing.state: __("use the buttons of the persona editor above"),
    EditPersonaDialog.typing_fact.state: __("send the new fact as a text message"),
    EditPersonaDialog.typing_question.state: __("send the question as a text message"),
    EditPersonaDialog.typing_answer.state: __("send the answer as a text message"),
    EditPersonaDialog.confirming_entry.state: __("press Save or Discard above"),
    EditPersonaDialog.typing_entry_text.state: __("send the new text as a text message"),
    EditPersonaDialog.typing_name.state: __("send the new name as a text message"),
    EditPersonaDialog.typing_prompt.state: __("send the new system prompt as a text message"),
    NewPersonaDialog.typing_name.state: __("send a name for the new persona"),
    NewPersonaDialog.typing_prompt.state: __("send the persona's description (its system prompt)"),
    NewPersonaDialog.adding_memory.state: __("press a button above: add a fact, a pair, or Done"),
    NewPersonaDialog.typing_fact.state: __("send the fact as a text message"),
    NewPersonaDialog.typing_question.state: __("send the question as a text message"),
    NewPersonaDialog.typing_answer.state: __("send the answer as a text message"),
    NewPersonaDialog.offering_switch.state: __("press one of the buttons above"),
    ImportPersonaDialog.sending_file.state: __("send the .json file made by /export_persona"),
}

# Translators: dialog names follow “You are in”, e.g. “You are in the persona editor”.
_DIALOG_NAMES: dict[str, LazyProxy] = {
    EditPersonaDialog.__full_group_name__: __("the persona editor (/edit_bot)"),
    NewPersonaDialog.__full_group_name__: __("creating a persona (/new_persona)"),
    ImportPersonaDialog.__full_group_name__: __("importing a persona (/import_persona)"),
}


def expected_input(state: str) -> str:
    """What the dialog in `state` waits for, in the user's language."""
    expected = _EXPECTED.get(state)
    return str(expected) if expected is not None else _("finish it")


def dialog_name(state: str) -> str:
    """The name of the dialog `state` belongs to, in the user's language."""
    name = _DIALOG_NAMES.get(state.split(":", 1)[0])
    # Translators: follows “You are in”, like the dialog names.
    return str(name) if name is not None else _("a dialog")
