"""The context window of a model, and the token budget of one request: the window less the
answer reserve and a margin."""

from __future__ import annotations

import logging
from dataclasses import dataclass

from app.memory.models import longest_prefix

log = logging.getLogger(__name__)

# Context windows of well-known models, matched by the longest prefix of the model name so
# dated snapshots ("gpt-4o-2024-08-06") match too. Where a model's input is capped below its
# window (gpt-5: 400k window, 272k input), the input cap is listed: it is what binds us.
KNOWN_CONTEXT_WINDOWS: dict[str, int] = {
    "gpt-3.5-turbo": 16_385,
    "gpt-4": 8_192,
    "gpt-4-32k": 32_768,
    "gpt-4-turbo": 128_000,
    "gpt-4o": 128_000,
    "gpt-4o-mini": 128_000,
    "gpt-4.1": 1_047_576,
    "gpt-4.5": 128_000,
    "gpt-5": 272_000,
    "o1": 200_000,
    "o1-mini": 128_000,
    "o3": 200_000,
    "o3-mini": 200_000,
    "o4-mini": 200_000,
}

# For a model we know nothing about (a local server) and no OPENAI_CONTEXT_WINDOW: every
# server that speaks the OpenAI protocol handles at least this much.
FALLBACK_CONTEXT_WINDOW = 4_096


def context_window(model: str, override: int | None = None) -> int:
    """The window to plan for: the setting if given, else the table, else a safe default."""
    if override is not None:
        return override
    prefix = longest_prefix(model, KNOWN_CONTEXT_WINDOWS)
    if prefix is not None:
        return KNOWN_CONTEXT_WINDOWS[prefix]
    log.warning(
        "Context window of model %r is unknown; assuming %d tokens. Set OPENAI_CONTEXT_WINDOW "
        "to use more of it.",
        model,
        FALLBACK_CONTEXT_WINDOW,
    )
    return FALLBACK_CONTEXT_WINDOW


@dataclass(frozen=True, slots=True)
class ContextBudget:
    """The token budget of one request."""

    window: int
    answer_reserve: int
    margin: int
    # Kept for the tools offered: their schemas, and the calls and results of the answer's
    # tool rounds (which join the prompt round by round).
    tools: int = 0

    @property
    def prompt_limit(self) -> int:
        """Most tokens the prompt (all messages, reply priming included) may take."""
        return self.window - self.answer_reserve - self.margin - self.tools

    @property
    def persona_limit(self) -> int:
        """Most a persona's memory may take: it leaves at least half for the conversation."""
        return self.prompt_limit // 2

    @classmethod
    def for_model(
        cls, model: str, *, window: int | None, answer_reserve: int, margin: int
    ) -> ContextBudget:
        budget = cls(context_window(model, window), answer_reserve, margin)
        if budget.prompt_limit < 256:
            raise ValueError(
                f"The context window of {model!r} ({budget.window} tokens) leaves no room for a "
                f"conversation after OPENAI_MAX_ANSWER_TOKENS={answer_reserve}; lower it or set "
                "OPENAI_CONTEXT_WINDOW"
            )
        return budget
