"""The /chats dialog's state: the one step that waits for text is a new title."""

from __future__ import annotations

from aiogram.fsm.state import State, StatesGroup
from pydantic import BaseModel


class ChatsDialog(StatesGroup):
    """/chats: a list edited in place; a state only while a new title is being typed."""

    typing_title = State()


class ChatsData(BaseModel):
    """What the dialog remembers while the user types (validated when read back)."""

    conversation_id: int
    menu_id: int | None = None
    page: int = 0
