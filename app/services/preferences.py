"""What a user changes in /settings (their preferences), validated and stored on their record."""

from __future__ import annotations

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
