"""The /settings dialog's state: the only step that waits for text is a typed temperature."""

from __future__ import annotations

from aiogram.fsm.state import State, StatesGroup
from pydantic import BaseModel


class SettingsDialog(StatesGroup):
    """/settings: a menu edited in place; a state only while a temperature is being typed."""

    typing_temperature = State()


class SettingsData(BaseModel):
    """What the dialog remembers while the user types (validated when read back)."""

    menu_id: int | None = None  # the settings message, shown again below the typed value
