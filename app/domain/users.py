"""The user behind an update, as every layer sees them: who they are and what they chose."""

from __future__ import annotations

from dataclasses import dataclass

from app.domain.enums import (
    AnswerLength,
    BudgetUnit,
    MemoryMode,
    ReasoningDisplay,
    Role,
    VoiceReplies,
)
from app.domain.refs import PersonaRef
from app.domain.rights import Right


@dataclass(frozen=True, slots=True)
class UserContext:
    """What the handlers know of the user behind an update."""

    id: int
    first_name: str
    telegram_language: str | None  # from the user's Telegram app
    role: Role
    has_access: bool
    persona_id: int | None  # as chosen; None means the default persona
    model: str | None
    temperature: float | None
    # The persona the user talks to now: the chosen one, or the default one.
    persona: PersonaRef | None = None
    memory_mode: MemoryMode | None = None  # None: the owner's default
    rights: frozenset[Right] = frozenset()
    blocked: bool = False
    language: str | None = None  # chosen in /settings; None: from Telegram
    answer_length: AnswerLength | None = None  # None: normal
    reasoning_display: ReasoningDisplay | None = None  # None: off
    voice_replies: VoiceReplies | None = None  # None: off
    recall_everywhere: bool | None = None  # None: the current conversation only
    budget_unit: BudgetUnit | None = None  # None: the owner's default budget
    budget_daily: float | None = None
    budget_monthly: float | None = None
    memory_profile: bool | None = None  # None: the owner's default (MEMORY_PROFILE)
    timezone: str | None = None  # chosen in /settings; None: DEFAULT_TIMEZONE
    # Tools' rights in effect (a plugin's, an MCP server's): granted, and with chat.
    tool_rights: frozenset[str] = frozenset()

    @property
    def is_admin(self) -> bool:
        return self.role is Role.ADMIN


@dataclass(frozen=True, slots=True)
class Preferences:
    """A user's choices (in /settings), with the owner's defaults filled in: what a request
    is made with."""

    persona: PersonaRef
    model: str
    temperature: float
    mode: MemoryMode = MemoryMode.CHAT
    answer_length: AnswerLength = AnswerLength.NORMAL
    # How a reasoning model's reasoning is shown with its answer.
    reasoning: ReasoningDisplay = ReasoningDisplay.OFF
    # When the answer is also spoken.
    voice_replies: VoiceReplies = VoiceReplies.OFF
    # Whether any budget limit applies (the user's own or the owner's; never to admins).
    limited: bool = False
    # Recall searches all the user's conversations with the persona.
    recall_everywhere: bool = False
    # Whether the assistant keeps (and sends) a profile of durable facts about the user.
    profile: bool = False
    # What the user may do (the tools offered follow from it), and where they live.
    rights: frozenset[str] = frozenset()
    timezone: str = "UTC"
