"""The /groups dialog's state: the only step that waits for text is a group's typed budget
limit."""

from __future__ import annotations

from typing import Literal

from aiogram.fsm.state import State, StatesGroup
from pydantic import BaseModel


class GroupsDialog(StatesGroup):
    """/groups: screens edited in place; a state only while a group's limit is being typed."""

    typing_limit = State()


class GroupLimitData(BaseModel):
    """Whose limit is being typed (the group), which one, and the card to replace."""

    chat_id: int
    period: Literal["daily", "monthly"]
    menu_id: int | None = None
