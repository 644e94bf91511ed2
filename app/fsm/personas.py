"""The persona dialogs' states and their data."""

from __future__ import annotations

from aiogram.fsm.state import State, StatesGroup
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
