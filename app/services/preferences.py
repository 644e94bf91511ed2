"""What a user changes in /settings (their preferences), validated and stored on their record."""

from __future__ import annotations

import functools
import re
import zoneinfo

from babel import Locale
from sqlalchemy.ext.asyncio import AsyncSession

from app.db.users import UserRepository
from app.domain.enums import AnswerLength, ReasoningDisplay, VoiceReplies
from app.i18n import LANGUAGES

TEMPERATURE_MIN = 0.0
TEMPERATURE_MAX = 2.0  # the OpenAI API's range; compatible servers take the same


class SettingInvalid(ValueError):
    """A value the setting does not take."""


def parse_temperature(text: str) -> float:
    """'0.7', '0,7', ' 1 ' -> a temperature from 0 to 2, to two decimals."""
    try:
        value = float(text.strip().replace(",", "."))
    except ValueError:
        raise SettingInvalid(text) from None
    if not TEMPERATURE_MIN <= value <= TEMPERATURE_MAX or value != value:  # NaN
        raise SettingInvalid(text)
    return round(value, 2)


@functools.cache
def _zones() -> dict[str, str]:
    """Every IANA zone by its name and by its city, lower-cased: 'europe/berlin' and
    'berlin', 'new york' -> 'America/New_York', and by the city's name in our languages
    from CLDR (babel's locale data): 'москва' -> 'Europe/Moscow'. (Where two zones share a
    city name, the first in sorted order is taken; the full name always works.)"""
    known = zoneinfo.available_timezones()
    zones: dict[str, str] = {}
    for name in sorted(known):
        if name.startswith(("Etc/", "SystemV/")) or "/" not in name:
            continue
        zones[name.lower()] = name
        city = name.rsplit("/", 1)[1].replace("_", " ").lower()
        zones.setdefault(city, name)
    for language in LANGUAGES:
        for name, names in Locale(language).time_zones.items():
            city = names.get("city")
            if city and name in known:
                zones.setdefault(str(city).lower(), name)
    return zones


_OFFSET = re.compile(r"^(?:utc|gmt)?\s*([+-])\s*(\d{1,2})(?::?00)?$")


def parse_timezone(text: str) -> str:
    """A typed time zone -> its IANA name: 'Europe/Berlin', 'berlin', 'New York', 'UTC',
    'UTC+3' or '+3' (whole hours: a fixed offset, without summer time)."""
    typed = " ".join(text.strip().split()).lower()
    if typed in ("utc", "gmt", "z"):
        return "UTC"
    if match := _OFFSET.match(typed):
        sign, hours = match.group(1), int(match.group(2))
        if hours > 14:
            raise SettingInvalid(text)
        if hours == 0:
            return "UTC"
        # The Etc zones count the other way round: UTC+3 is Etc/GMT-3.
        return f"Etc/GMT{'-' if sign == '+' else '+'}{hours}"
    found = _zones().get(typed) or _zones().get(typed.replace(" ", "_"))
    if found is None:
        raise SettingInvalid(text)
    return found


def valid_timezone(name: str) -> bool:
    """A zone name this machine knows (a button's value is checked with it)."""
    return name == "UTC" or name in zoneinfo.available_timezones()


class PreferencesService:
    """Stores a user's choices; None puts a setting back to the owner's default."""

    def __init__(self, models: tuple[str, ...]) -> None:
        self.models = models

    async def set_model(self, session: AsyncSession, user_id: int, model: str | None) -> None:
        if model is not None and model not in self.models:
            raise SettingInvalid(model)
        await UserRepository(session).set_choices(user_id, model=model)

    async def set_temperature(
        self, session: AsyncSession, user_id: int, value: float | None
    ) -> None:
        if value is not None and not TEMPERATURE_MIN <= value <= TEMPERATURE_MAX:
            raise SettingInvalid(str(value))
        await UserRepository(session).set_choices(user_id, temperature=value)

    async def set_answer_length(
        self, session: AsyncSession, user_id: int, length: AnswerLength
    ) -> None:
        await UserRepository(session).set_choices(user_id, answer_length=length)

    async def set_reasoning_display(
        self, session: AsyncSession, user_id: int, display: ReasoningDisplay
    ) -> None:
        await UserRepository(session).set_choices(user_id, reasoning_display=display)

    async def set_voice_replies(
        self, session: AsyncSession, user_id: int, replies: VoiceReplies
    ) -> None:
        await UserRepository(session).set_choices(user_id, voice_replies=replies)

    async def set_recall_everywhere(
        self, session: AsyncSession, user_id: int, everywhere: bool
    ) -> None:
        """Recall in all the user's conversations with the persona, or (None) the current
        one only."""
        await UserRepository(session).set_choices(user_id, recall_everywhere=everywhere or None)

    async def set_timezone(self, session: AsyncSession, user_id: int, zone: str | None) -> None:
        if zone is not None and not valid_timezone(zone):
            raise SettingInvalid(zone)
        await UserRepository(session).set_choices(user_id, timezone=zone)

    async def set_language(self, session: AsyncSession, user_id: int, language: str | None) -> None:
        if language is not None and language not in LANGUAGES:
            raise SettingInvalid(language)
        await UserRepository(session).set_choices(user_id, language=language)


def parse_limit(text: str, *, money: bool) -> float | None:
    """A typed budget limit -> the number, or None for '0' or '-' (no limit). Tokens:
    '200000', '200 000', '200,000'. Money: '2.50', '$2.5', '2,5'."""
    cleaned = text.strip().replace(" ", "").replace("\u00a0", "").strip("$€£₽")
    cleaned = cleaned.replace(",", "." if money else "")
    if cleaned in ("0", "-"):
        return None
    try:
        value = float(cleaned)
    except ValueError:
        raise SettingInvalid(text) from None
    if not 0 < value < float("inf") or (not money and value != int(value)):
        raise SettingInvalid(text)
    return value
