"""The /users dialog's state: the only step that waits for text is a typed budget limit."""

from __future__ import annotations

from typing import Literal

from aiogram.fsm.state import State, StatesGroup
from pydantic import BaseModel


class UsersDialog(StatesGroup):
    """/users: screens edited in place; a state only while a budget limit is being typed."""

    typing_limit = State()


class LimitData(BaseModel):
    """Whose limit is being typed, which one, and the screen to return to."""

    user_id: int
    period: Literal["daily", "monthly"]
    page: int = 0
    menu_id: int | None = None
