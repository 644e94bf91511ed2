"""Assembling a request: persona memory, then as many recent turns as fit, then the new message.

Pure logic: it takes counts that were stored when each piece was written and never counts
anything itself, so assembly costs what it includes and nothing more.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Literal

from app.memory.budget import Budget
from app.memory.tokens import REPLY_PRIMING, TokenCounter

Role = Literal["system", "user", "assistant"]

FACTS_HEADING = "Facts you know:"


@dataclass(frozen=True, slots=True)
class Turn:
    """A message of the request with its stored cost in the chat format."""

    role: Role
    content: str
    tokens: int
    id: int | None = None

    def as_api(self) -> dict[str, str]:
        return {"role": self.role, "content": self.content}


@dataclass(frozen=True, slots=True)
class QAPair:
    """A question/answer pair from persona memory, shown to the model as an example exchange."""

    question: str
    answer: str
    tokens: int  # both messages together


@dataclass(frozen=True, slots=True)
class PersonaMemory:
    """Everything a persona always sends: its system message (prompt + facts) and its pairs."""

    name: str
    system_message: str
    system_tokens: int
    pairs: Sequence[QAPair] = ()

    @property
    def tokens(self) -> int:
        return self.system_tokens + sum(pair.tokens for pair in self.pairs)

    def turns(self) -> list[Turn]:
        turns = [Turn("system", self.system_message, self.system_tokens)]
        for pair in self.pairs:
            # The pair's cost is stored for both messages; split it only for bookkeeping.
            turns.append(Turn("user", pair.question, 0))
            turns.append(Turn("assistant", pair.answer, pair.tokens))
        return turns


def compose_system_message(prompt: str, facts: Iterable[str]) -> str:
    """The one system message: the prompt, then the facts as a list."""
    facts = [fact.strip() for fact in facts if fact.strip()]
    if not facts:
        return prompt
    return prompt + "\n\n" + FACTS_HEADING + "\n" + "\n".join(f"- {fact}" for fact in facts)


def pair_tokens(counter: TokenCounter, question: str, answer: str) -> int:
    return counter.message("user", question) + counter.message("assistant", answer)


class PersonaTooLarge(Exception):
    """The persona's memory alone leaves no room for a conversation."""

    def __init__(self, persona_tokens: int, limit: int) -> None:
        self.persona_tokens = persona_tokens
        self.limit = limit
        super().__init__(f"persona memory takes {persona_tokens} of {limit} prompt tokens")


class MessageTooLong(Exception):
    """The new message does not fit beside the persona's memory."""

    def __init__(self, message_tokens: int, limit: int) -> None:
        self.message_tokens = message_tokens
        self.limit = limit
        super().__init__(f"message takes {message_tokens} tokens, {limit} fit")


@dataclass(slots=True)
class ContextBuilder:
    """Fills the room left by the persona and the new message with history, newest first.

    `offer()` takes turns newest-first and says when the budget is full, so the caller can
    stop reading history there: the cost never depends on how long the history is.
    """

    persona: PersonaMemory
    new_message: Turn
    budget: Budget
    _history: list[Turn] = field(default_factory=list)
    _room: int = 0
    _full: bool = False

    def __post_init__(self) -> None:
        limit = self.budget.prompt_limit
        persona_part = REPLY_PRIMING + self.persona.tokens
        if persona_part >= limit:
            raise PersonaTooLarge(persona_part, limit)
        if persona_part + self.new_message.tokens > limit:
            raise MessageTooLong(self.new_message.tokens, limit - persona_part)
        self._room = limit - persona_part - self.new_message.tokens

    @property
    def full(self) -> bool:
        return self._full

    def offer(self, turn: Turn) -> bool:
        """Take the next older turn if it fits; False once the budget is full."""
        if self._full or turn.tokens > self._room:
            # Stop at the first turn that does not fit: skipping it to squeeze in an older
            # one would show the model a conversation with a hole in it.
            self._full = True
            return False
        self._history.append(turn)
        self._room -= turn.tokens
        return True

    def offer_all(self, turns: Iterable[Turn]) -> bool:
        """Offer turns newest-first; False once the budget is full."""
        return all(self.offer(turn) for turn in turns)

    def build(self) -> Assembled:
        turns = [*self.persona.turns(), *reversed(self._history), self.new_message]
        prompt_tokens = self.budget.prompt_limit - self._room
        return Assembled(turns, prompt_tokens, len(self._history))


@dataclass(frozen=True, slots=True)
class Assembled:
    """A request ready to send, with its exact prompt size."""

    turns: list[Turn]
    prompt_tokens: int
    history_turns: int

    def as_api(self) -> list[dict[str, str]]:
        return [turn.as_api() for turn in self.turns]
