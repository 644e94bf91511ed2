"""Assembling a request: persona memory, then as many recent turns as fit, then the new message.

Pure logic: it takes counts that were stored when each piece was written and never counts
anything itself, so assembly costs what it includes and nothing more.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, Literal

from app.domain.enums import ImageDetail
from app.domain.media import Picture
from app.domain.memory import Breakdown
from app.memory.tokens import REPLY_PRIMING, TokenCounter
from app.memory.window import ContextBudget

Role = Literal["system", "user", "assistant"]

FACTS_HEADING = "Facts you know:"


# The most images one request carries: OpenAI takes up to 500 and 50 MB a request, but
# every image is sent whole each time, so older ones beyond this become notes.
MAX_PICTURES = 16


@dataclass(frozen=True, slots=True)
class Turn:
    """A message of the request with its cost in the chat format: its stored text count,
    plus its images' tokens for the model at hand when it carries any. `fallback` is the
    same turn with a note in place of its images, taken when they do not fit."""

    role: Role
    content: str
    tokens: int
    id: int | None = None
    pictures: tuple[Picture, ...] = ()
    fallback: Turn | None = None
    # Of `tokens`, what the images cost: the rest is the stored count of the text.
    image_tokens: int = 0
    # An answer's tool rounds (the assistant's calls and the tools' results, as the API
    # took them), sent before it; `tokens` includes them.
    tools: tuple[dict[str, Any], ...] = ()

    def messages(
        self, urls: Mapping[str, str] | None = None, detail: ImageDetail = ImageDetail.AUTO
    ) -> list[dict[str, Any]]:
        """The turn as the API takes it: its tool rounds, if any, then its own message."""
        if self.tools:
            return [*self.tools, self.as_api(urls, detail)]
        return [self.as_api(urls, detail)]

    def as_api(
        self, urls: Mapping[str, str] | None = None, detail: ImageDetail = ImageDetail.AUTO
    ) -> dict[str, Any]:
        """The message as the API takes it; images as parts, their data by file_unique_id."""
        if not self.pictures:
            return {"role": self.role, "content": self.content}
        urls = urls or {}
        parts: list[dict[str, Any]] = []
        if self.content:
            parts.append({"type": "text", "text": self.content})
        for picture in self.pictures:
            url = urls[picture.file_unique_id]
            parts.append({"type": "image_url", "image_url": {"url": url, "detail": detail.value}})
        return {"role": self.role, "content": parts}


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


@dataclass(frozen=True, slots=True)
class Shares:
    """The most of the conversation budget the summary and the recalled turns may take."""

    summary: float = 0.0
    recall: float = 0.0
    # The user's profile (durable facts about them), sent in private conversations only.
    profile: float = 0.0


SUMMARY_HEADING = "Summary of the earlier conversation:"


def summary_message(summary: str) -> str:
    """The system message a conversation's summary is sent (and counted) as."""
    return SUMMARY_HEADING + "\n" + summary


@dataclass(slots=True)
class ContextBuilder:
    """Fills the room left by the persona and the new message, in priority order.

    The conversation budget is what the persona and the new message leave. The summary
    comes first, if it fits its share; then recent turns newest-first, with the recall
    share held back; then the best recalled older turns within that share; what recall
    leaves goes back to recent turns (`release_recall`).

    `offer()` takes turns newest-first and says when the budget is full, so the caller can
    stop reading history there: the cost never depends on how long the history is.
    """

    persona: PersonaMemory
    new_message: Turn
    budget: ContextBudget
    shares: Shares = field(default_factory=Shares)
    # The user's answer-length instruction, sent after the persona; counted with it.
    style: Turn | None = None
    summary: Turn | None = None
    # Parts of long documents matching the new message, sent just before it.
    excerpts: Turn | None = None
    # What the assistant knows of the user (their profile), after the persona.
    profile: Turn | None = None
    _history: list[Turn] = field(default_factory=list)
    _recalled: list[Turn] = field(default_factory=list)
    _taken: set[int] = field(default_factory=set)
    _conversation_budget: int = 0
    _room: int = 0
    _recall_room: int = 0
    _full: bool = False
    _pending: Turn | None = None
    _pictures: int = 0

    def __post_init__(self) -> None:
        limit = self.budget.prompt_limit
        persona_part = REPLY_PRIMING + self.persona.tokens + self._style_tokens
        if persona_part >= limit:
            raise PersonaTooLarge(persona_part, limit)
        fallback = self.new_message.fallback
        if (
            persona_part + self.new_message.tokens > limit
            or len(self.new_message.pictures) > MAX_PICTURES
        ) and fallback is not None:
            # Images too large for the window are left out, with a note to the model.
            self.new_message = fallback
        self._pictures = len(self.new_message.pictures)
        if persona_part + self.new_message.tokens > limit:
            raise MessageTooLong(self.new_message.tokens, limit - persona_part)
        budget = self._conversation_budget = limit - persona_part - self.new_message.tokens
        self._recall_room = int(budget * self.shares.recall)
        self._room = budget - self._recall_room
        summary, self.summary = self.summary, None
        self.use_summary(summary)

    @property
    def _style_tokens(self) -> int:
        return self.style.tokens if self.style is not None else 0

    def use_summary(self, summary: Turn | None) -> bool:
        """Put the conversation's summary ahead of the turns, if it fits its share; call
        before offering turns. A summary over its share is left out rather than let it
        crowd out recent turns (the summariser keeps it well under that)."""
        if summary is None or self.summary is not None or self._history:
            return False
        if summary.tokens > min(int(self._conversation_budget * self.shares.summary), self._room):
            return False
        self.summary = summary
        self._room -= summary.tokens
        return True

    def use_profile(self, profile: Turn | None) -> bool:
        """Send the user's profile, if it fits its share of the budget; call before offering
        turns. One over its share is left out whole (the writer keeps it well under)."""
        if profile is None or self.profile is not None or self._history:
            return False
        if profile.tokens > min(int(self._conversation_budget * self.shares.profile), self._room):
            return False
        self.profile = profile
        self._room -= profile.tokens
        return True

    def use_excerpts(self, excerpts: Turn, share: float) -> bool:
        """Send parts of the conversation's documents, if they fit `share` of the budget;
        call before offering turns."""
        if self.excerpts is not None or self._history:
            return False
        if excerpts.tokens > min(int(self._conversation_budget * share), self._room):
            return False
        self.excerpts = excerpts
        self._room -= excerpts.tokens
        return True

    @property
    def full(self) -> bool:
        return self._full

    @property
    def conversation_budget(self) -> int:
        """Tokens the summary, recalled and recent turns may take together."""
        return self._conversation_budget

    @property
    def oldest_recent_id(self) -> int | None:
        """Id of the oldest recent turn taken: recall looks only below it."""
        return self._history[-1].id if self._history else None

    def offer(self, turn: Turn) -> bool:
        """Take the next older turn if it fits; False once the budget is full."""
        if self._full:
            return False
        if turn.id is not None and turn.id in self._taken:
            return True  # already in as a recalled turn: it costs nothing more
        if turn.fallback is not None and (
            turn.tokens > self._room or self._pictures + len(turn.pictures) > MAX_PICTURES
        ):
            # An old image that no longer fits gives way to a note of it, and the
            # conversation around it goes on.
            turn = turn.fallback
        if turn.tokens > self._room:
            # Stop at the first turn that does not fit: skipping it to squeeze in an older
            # one would show the model a conversation with a hole in it. It is kept, to be
            # offered again if recall leaves room.
            self._full = True
            self._pending = turn
            return False
        self._history.append(turn)
        if turn.id is not None:
            self._taken.add(turn.id)
        self._room -= turn.tokens
        self._pictures += len(turn.pictures)
        return True

    def recall(self, candidates: Iterable[Turn]) -> int:
        """Take older turns, best match first, within the recall share; returns how many.

        A candidate already in the request, or without an id, is skipped; so is one that
        does not fit, since recalled turns need not be contiguous.
        """
        taken = 0
        for turn in candidates:
            if turn.id is None or turn.id in self._taken or turn.tokens > self._recall_room:
                continue
            self._recalled.append(turn)
            self._taken.add(turn.id)
            self._recall_room -= turn.tokens
            taken += 1
        return taken

    def release_recall(self) -> None:
        """Give what recall left to recent turns; the turn that did not fit is offered again."""
        self._room += self._recall_room
        self._recall_room = 0
        if self._full:
            self._full = False
            pending, self._pending = self._pending, None
            if pending is not None:
                self.offer(pending)

    def build(self) -> Assembled:
        if self._recalled:
            # Recalled turns are older than the recent ones they were chosen beside, but
            # recent turns taken after recall may reach past some: order everything by id.
            history = sorted([*self._recalled, *self._history], key=lambda t: t.id or 0)
        else:
            history = list(reversed(self._history))
        summary = [self.summary] if self.summary is not None else []
        style = [self.style] if self.style is not None else []
        excerpts = [self.excerpts] if self.excerpts is not None else []
        profile = [self.profile] if self.profile is not None else []
        turns = [
            *self.persona.turns(),
            *style,
            *profile,
            *summary,
            *history,
            *excerpts,
            self.new_message,
        ]
        summary_tokens = self.summary.tokens if self.summary is not None else 0
        recalled_tokens = sum(turn.tokens for turn in self._recalled)
        recent_tokens = sum(turn.tokens for turn in self._history)
        persona = self.persona.tokens + self._style_tokens
        breakdown = Breakdown(
            prompt_limit=self.budget.prompt_limit,
            answer_reserve=self.budget.answer_reserve,
            conversation_budget=self._conversation_budget,
            persona=persona,
            new_message=self.new_message.tokens,
            summary=summary_tokens,
            recalled=recalled_tokens,
            recent=recent_tokens,
            recalled_turns=len(self._recalled),
            recent_turns=len(self._history),
            documents=self.excerpts.tokens if self.excerpts is not None else 0,
            profile=self.profile.tokens if self.profile is not None else 0,
            tools=self.budget.tools,
        )
        prompt_tokens = (
            REPLY_PRIMING + persona + self.new_message.tokens + breakdown.conversation_used
        )
        return Assembled(
            turns,
            prompt_tokens,
            len(self._history) + len(self._recalled),
            breakdown=breakdown,
            truncated=self._full,
            oldest_recent_id=self.oldest_recent_id,
        )


@dataclass(frozen=True, slots=True)
class Assembled:
    """A request ready to send, with its exact prompt size."""

    turns: list[Turn]
    prompt_tokens: int
    history_turns: int
    breakdown: Breakdown | None = None
    # True when older turns were left out: they are the summariser's work.
    truncated: bool = False
    oldest_recent_id: int | None = None

    @property
    def pictures(self) -> list[Picture]:
        """The images this request carries, each once."""
        seen: dict[str, Picture] = {}
        for turn in self.turns:
            for picture in turn.pictures:
                seen.setdefault(picture.file_unique_id, picture)
        return list(seen.values())

    def without_pictures_of(self, missing: set[str]) -> Assembled:
        """The request with the turns whose images could not be fetched in their noted form
        (never larger: a note costs less than an image)."""
        turns: list[Turn] = []
        prompt_tokens = self.prompt_tokens
        for turn in self.turns:
            if turn.fallback is not None and any(
                p.file_unique_id in missing for p in turn.pictures
            ):
                prompt_tokens += turn.fallback.tokens - turn.tokens
                turn = turn.fallback
            turns.append(turn)
        return replace(self, turns=turns, prompt_tokens=prompt_tokens)

    def as_api(
        self, urls: Mapping[str, str] | None = None, detail: ImageDetail = ImageDetail.AUTO
    ) -> list[dict[str, Any]]:
        return [message for turn in self.turns for message in turn.messages(urls, detail)]
