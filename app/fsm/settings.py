"""The /settings dialog's states: the steps that wait for text, a typed temperature or time
zone."""

from __future__ import annotations

from aiogram.fsm.state import State, StatesGroup
from pydantic import BaseModel


class SettingsDialog(StatesGroup):
    """/settings: a menu edited in place; a state only while a value is being typed."""

    typing_temperature = State()
    typing_timezone = State()


class SettingsData(BaseModel):
    """What the dialog remembers while the user types (validated when read back)."""

    menu_id: int | None = None  # the settings message, shown again below the typed value
