"""What /memory shows: where the tokens of a request go, part by part."""

from __future__ import annotations

from dataclasses import dataclass

from app.domain.enums import MemoryMode


@dataclass(frozen=True, slots=True)
class Breakdown:
    """Where a request's tokens went, part by part (what /memory shows)."""

    prompt_limit: int
    answer_reserve: int
    conversation_budget: int
    persona: int
    new_message: int
    summary: int
    recalled: int
    recent: int
    recalled_turns: int
    recent_turns: int
    documents: int = 0  # parts of long documents matching the message
    profile: int = 0  # what the assistant knows of the user
    tools: int = 0  # kept for the tools offered (schemas, calls and results), if any

    @property
    def conversation_used(self) -> int:
        return self.summary + self.recalled + self.recent + self.documents + self.profile


@dataclass(frozen=True, slots=True)
class MemoryReport:
    """What /memory shows: where the tokens of the next request would go, and the summary."""

    persona: str
    mode: MemoryMode
    conversation_id: int
    stored_turns: int
    # None when the persona alone is too large for the window.
    breakdown: Breakdown | None
    summary: str | None


@dataclass(frozen=True, slots=True)
class ProfileEntry:
    """One fact the assistant keeps about a user, as /memory lists it."""

    id: int
    text: str
