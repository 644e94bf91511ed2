"""The user's profile: short durable facts about them, written in the background from their
private conversations and sent, within its share, to each of their personas.

The writer runs after an answer, never before it: every `MEMORY_PROFILE_EVERY` new messages
of a user in their private chat, one task per user at a time, kept so shutdown can wait for
it or cancel it. It shows `MEMORY_SUMMARY_MODEL` the profile and the user's messages since
its last look, and applies the JSON operations it answers (add facts, remove facts) within
`MEMORY_PROFILE_MAX_TOKENS` and `MEMORY_PROFILE_MAX_FACTS`. A failed call changes nothing
and pauses the user's writer like a failed summary (`MEMORY_SUMMARY_RETRY_SECONDS`); its
cost, like every call's, is recorded as the user's usage. Group conversations are never
read: other members' words are not the user's, and what it learns there is not theirs.
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
import time
from collections.abc import Sequence
from typing import Any

from openai import AsyncOpenAI
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.config import MemorySettings, OpenAISettings
from app.db.models import Message
from app.db.profile import ProfileRepository
from app.llm.chat import ChatRequest, LLMError, TokenUsage, complete
from app.memory.context import Turn
from app.memory.summary import UsageRecorder
from app.memory.tokens import REPLY_PRIMING, TokenCounter

log = logging.getLogger(__name__)

# The system message the profile is sent (and counted) as: English, like every
# instruction to the model, which answers in the user's language.
PROFILE_HEADING = (
    "What you know about the user from earlier conversations (use it where it helps; do "
    "not recite it):"
)
INSTRUCTIONS = (
    "You keep a short profile of durable facts about a user: their name, family, pets, "
    "home, work, projects, preferences, dislikes, allergies and health needs, languages, "
    "and plans that will matter later. Read the profile and the user's new messages, then "
    "answer with JSON only, of the form "
    '{"add": ["one short sentence", ...], "remove": [numbers of outdated or wrong facts]}. '
    "Add only facts the user stated about themselves that will still be true next month; "
    "never guesses, moods, passing requests or what the assistant said. Remove a fact the "
    "new messages contradict, and add its replacement. Write each fact as one short "
    "sentence in the third person, in the language of the messages. Never repeat a fact "
    'already in the profile. With nothing to change, answer {"add": [], "remove": []}.'
)
# The longest fact, in characters: one short sentence.
FACT_MAX_CHARS = 200
# The most of the user's messages one call reads (the input budget decides first).
MAX_TURNS = 64
# What the model may answer: a few facts, their numbers and the JSON around them.
ANSWER_TOKENS = 400


def profile_message(facts: Sequence[str]) -> str:
    """The profile as the one system message it is sent as."""
    return PROFILE_HEADING + "\n" + "\n".join(f"- {fact}" for fact in facts)


def clean_fact(text: str) -> str:
    """A fact as stored: one line, without list marks, at most FACT_MAX_CHARS."""
    text = " ".join(text.split()).lstrip("-•* ").strip()
    return text[:FACT_MAX_CHARS].strip()


class ProfileBook:
    """The profile as the model sees it: its message, its exact count, and its limits."""

    def __init__(self, counter: TokenCounter, settings: MemorySettings) -> None:
        self.counter = counter
        self.settings = settings
        # The exact count of each profile message sent lately: it changes only when a fact
        # does, and a user sends many messages between two changes.
        self._counts: dict[str, int] = {}

    def tokens(self, facts: Sequence[str]) -> int:
        """The exact count of the profile message with these facts."""
        text = profile_message(facts)
        count = self._counts.get(text)
        if count is None:
            if len(self._counts) >= 1024:
                self._counts.clear()
            count = self._counts[text] = self.counter.message("system", text)
        return count

    def fits(self, facts: Sequence[str]) -> bool:
        """Within MEMORY_PROFILE_MAX_FACTS and MEMORY_PROFILE_MAX_TOKENS."""
        if len(facts) > self.settings.profile_max_facts:
            return False
        return not facts or self.tokens(facts) <= self.settings.profile_max_tokens

    def fact_tokens(self, fact: str) -> int:
        """What a fact adds to the profile, about: its line."""
        return self.counter.text(f"- {fact}\n")

    async def turn(self, session: AsyncSession, user_id: int) -> Turn | None:
        """The user's profile as a system turn, counted exactly; None while it is empty."""
        facts = [text for _, text, _ in await ProfileRepository(session).facts(user_id)]
        if not facts:
            return None
        return Turn("system", profile_message(facts), self.tokens(facts))


class ProfileWriter:
    """Brings each user's profile up to date from their private messages, in the background."""

    def __init__(
        self,
        pool: async_sessionmaker[AsyncSession],
        llm: AsyncOpenAI,
        book: ProfileBook,
        openai: OpenAISettings,
        settings: MemorySettings,
        *,
        usage: UsageRecorder | None = None,
    ) -> None:
        self.pool = pool
        self.llm = llm
        self.book = book
        self.openai = openai
        self.settings = settings
        self.usage = usage
        self.model = settings.summary_model or openai.model
        self._since: dict[int, int] = {}
        self._tasks: dict[int, asyncio.Task[Any]] = {}
        self._failed_at: dict[int, float] = {}

    @property
    def enabled(self) -> bool:
        return self.settings.profile_share > 0

    def noted(self, user_id: int) -> bool:
        """A new message of the user in their private chat was answered (with their profile
        on): every MEMORY_PROFILE_EVERY of them, the profile is updated soon. True when an
        update was scheduled."""
        if not self.enabled:
            return False
        since = self._since.get(user_id, 0) + 1
        if since < self.settings.profile_every or user_id in self._tasks:
            self._since[user_id] = since
            return False
        failed_at = self._failed_at.get(user_id)
        if failed_at is not None:
            if time.monotonic() - failed_at < self.settings.summary_retry_seconds:
                self._since[user_id] = since
                return False
            del self._failed_at[user_id]
        self._since[user_id] = 0
        task = asyncio.create_task(self._run(user_id))
        self._tasks[user_id] = task
        task.add_done_callback(lambda _: self._tasks.pop(user_id, None))
        return True

    def forget(self, user_id: int) -> None:
        """The profile was deleted: count the user's messages afresh."""
        self._since.pop(user_id, None)

    async def _run(self, user_id: int) -> None:
        try:
            await self.update(user_id)
        except LLMError as exc:
            self._failed_at[user_id] = time.monotonic()
            log.warning("Updating the profile of user %s failed (%s): %s", user_id, exc.kind, exc)
        except Exception:
            self._failed_at[user_id] = time.monotonic()
            log.exception("Updating the profile of user %s failed; will retry later", user_id)

    def _on(self, choice: bool | None) -> bool:
        return self.settings.profile if choice is None else choice

    async def update(self, user_id: int) -> bool:
        """One look at the user's messages since the last one; True when it stored a change
        or moved on."""
        async with self.pool() as session:
            profiles = ProfileRepository(session)
            setting = await profiles.setting(user_id)
            if setting is None or not self._on(setting[0]):
                return False
            until_id = setting[1]
            facts = await profiles.facts(user_id)
            rows = await profiles.user_turns_after(user_id, until_id, MAX_TURNS)
        budget = self.settings.summary_input_tokens
        taken: list[tuple[int, str]] = []
        total = 0
        for row_id, content, tokens in rows:
            if taken and total + tokens > budget:
                break
            taken.append((row_id, content[: budget * 4]))
            total += tokens
        if not taken:
            return False
        request = self._request([text for _, text, _ in facts], [text for _, text in taken])
        completion = await complete(self.llm, request)
        usage = completion.usage or self._counted(request, completion.text)
        add, remove = parse_operations(completion.text, len(facts))
        last_id = taken[-1][0]
        async with self.pool() as session, session.begin():
            await self._record(session, user_id, usage)
            profiles = ProfileRepository(session)
            now = await profiles.setting(user_id)
            # Turned off, forgotten (the messages are gone) or updated by another process
            # meanwhile: what was read is no longer the user's to keep.
            if (
                now is None
                or not self._on(now[0])
                or now[1] != until_id
                or await session.get(Message, last_id) is None
            ):
                return False
            current = await profiles.facts(user_id)
            known = {row[0] for row in current}
            removed = [facts[index][0] for index in remove if facts[index][0] in known]
            await profiles.remove(user_id, removed)
            kept = [text for fact_id, text, _ in current if fact_id not in removed]
            seen = {text.casefold() for text in kept}
            for raw in add:
                fact = clean_fact(raw)
                if not fact or fact.casefold() in seen or not self.book.fits([*kept, fact]):
                    continue
                await profiles.add(user_id, fact, self.book.fact_tokens(fact))
                kept.append(fact)
                seen.add(fact.casefold())
            await profiles.read_until(user_id, last_id)
        log.debug("Profile of user %s read up to turn %s", user_id, last_id)
        return True

    def _request(self, facts: Sequence[str], turns: Sequence[str]) -> ChatRequest:
        listed = "\n".join(f"{number}. {fact}" for number, fact in enumerate(facts, 1))
        messages = "\n".join(f"- {text}" for text in turns)
        return ChatRequest(
            model=self.model,
            messages=[
                {"role": "system", "content": INSTRUCTIONS},
                {
                    "role": "user",
                    "content": f"Profile:\n{listed or '(empty)'}\n\nNew messages:\n{messages}",
                },
            ],
            max_answer_tokens=ANSWER_TOKENS,
            temperature=0.0,
            use_max_completion_tokens=self.openai.is_public_openai,
        )

    def _counted(self, request: ChatRequest, answer: str) -> TokenUsage:
        """Our own exact count of a call, for servers that report no usage."""
        counter = self.book.counter
        prompt = REPLY_PRIMING + sum(
            counter.message(m["role"], m["content"]) for m in request.messages
        )
        return TokenUsage(prompt, counter.text(answer))

    async def _record(self, session: AsyncSession, user_id: int, usage: TokenUsage) -> None:
        if self.usage is not None:
            await self.usage.record(session, user_id=user_id, model=self.model, usage=usage)

    async def drain(self, grace: float) -> int:
        """At shutdown: let running updates finish for up to `grace` seconds, then cancel (a
        cancelled one reads the same messages after the next start)."""
        pending = set(self._tasks.values())
        if not pending:
            return 0
        _, late = await asyncio.wait(pending, timeout=grace)
        for task in late:
            task.cancel()
        if late:
            await asyncio.wait(late, timeout=1.0)
        return len(late)


_JSON = re.compile(r"\{.*\}", re.DOTALL)


def parse_operations(answer: str, facts: int) -> tuple[list[str], list[int]]:
    """The facts to add and the (0-based) indexes of those to remove, from the model's
    JSON; whatever is not in the expected form is ignored."""
    match = _JSON.search(answer)
    if match is None:
        return [], []
    try:
        data = json.loads(match.group(0))
    except ValueError:
        return [], []
    if not isinstance(data, dict):
        return [], []
    adds, removes = data.get("add"), data.get("remove")
    add = [item for item in adds if isinstance(item, str)] if isinstance(adds, list) else []
    remove: list[int] = []
    for item in removes if isinstance(removes, list) else []:
        number = item if isinstance(item, int) and not isinstance(item, bool) else None
        if isinstance(item, str) and item.strip().isdigit():
            number = int(item.strip())
        if number is not None and 1 <= number <= facts and number - 1 not in remove:
            remove.append(number - 1)
    return add, remove
