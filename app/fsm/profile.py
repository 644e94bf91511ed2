"""The /memory profile dialog's state: waiting for a fact the user types about themselves."""

from __future__ import annotations

from aiogram.fsm.state import State, StatesGroup
from pydantic import BaseModel


class ProfileDialog(StatesGroup):
    """The profile under /memory: a state only while a new fact is being typed."""

    typing_fact = State()


class ProfileData(BaseModel):
    """What the dialog remembers while the user types (validated when read back)."""

    menu_id: int | None = None  # the profile message, shown again below the typed fact
