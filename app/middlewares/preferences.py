"""Injects the user's preferences (persona, model, temperature, memory mode, answer length,
reasoning display), with the owner's defaults filled in."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from aiogram import BaseMiddleware
from aiogram.types import TelegramObject

from app.config import BudgetSettings, MemorySettings, OpenAISettings
from app.domain.enums import AnswerLength, MemoryMode, ReasoningDisplay, VoiceReplies
from app.domain.users import Preferences, UserContext
from app.services.personas import persona_for
from app.services.usage import limits_for


class PreferencesMiddleware(BaseMiddleware):
    """Inner middleware: adds `preferences`, from what the access middleware read."""

    def __init__(
        self,
        defaults: OpenAISettings,
        memory: MemorySettings,
        budget: BudgetSettings,
        timezone: str = "UTC",
    ) -> None:
        self.timezone = timezone  # DEFAULT_TIMEZONE
        self.defaults = defaults
        self.budget = budget
        self.models = frozenset(defaults.choosable_models)
        self.default_mode = MemoryMode(memory.default_mode)
        self.profile = memory.profile

    async def __call__(
        self,
        handler: Callable[[TelegramObject, dict[str, Any]], Awaitable[Any]],
        event: TelegramObject,
        data: dict[str, Any],
    ) -> Any:
        user: UserContext | None = data.get("user")
        if user is not None:
            data["preferences"] = Preferences(
                persona=user.persona or await persona_for(data["session"], user.persona_id),
                # A model the owner no longer offers falls back to the default one.
                model=user.model if user.model in self.models else self.defaults.model,
                temperature=(
                    user.temperature if user.temperature is not None else self.defaults.temperature
                ),
                mode=user.memory_mode or self.default_mode,
                answer_length=user.answer_length or AnswerLength.NORMAL,
                reasoning=user.reasoning_display or ReasoningDisplay.OFF,
                voice_replies=user.voice_replies or VoiceReplies.OFF,
                limited=budget_applies(user, self.budget),
                recall_everywhere=bool(user.recall_everywhere),
                profile=self.profile if user.memory_profile is None else user.memory_profile,
                rights=frozenset(user.rights) | user.tool_rights,
                timezone=user.timezone or self.timezone,
            )
        return await handler(event, data)


def budget_applies(user: UserContext, budget: BudgetSettings) -> bool:
    """Whether any limit applies to the user (their own or the owner's; never admins)."""
    limits = limits_for(
        budget,
        is_admin=user.is_admin,
        unit=user.budget_unit,
        daily=user.budget_daily,
        monthly=user.budget_monthly,
    )
    return limits is not None and (limits.daily is not None or limits.monthly is not None)
