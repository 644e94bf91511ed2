"""The rolling summary: turns that fell out of the context, folded in after answers.

Runs in the background after an answer is sent, never before it; one task per conversation
at a time, each kept in a set so shutdown can wait for it or cancel it (and, with several
processes, one across them: a `ConversationLocks` the run takes without waiting). A failed call
changes nothing (the turns stay stored and the summary keeps pointing at the last turn it
covers), so the next answer after a pause tries again. What a call cost is recorded as the
usage of the user whose conversation it summarised.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable
from contextlib import AbstractAsyncContextManager
from typing import Any, Protocol

from openai import AsyncOpenAI
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.config import MemorySettings, OpenAISettings
from app.db.messages import MessageRepository
from app.llm.chat import ChatRequest, LLMError, TokenUsage, complete
from app.memory.context import summary_message
from app.memory.tokens import REPLY_PRIMING, TokenCounter

log = logging.getLogger(__name__)

INSTRUCTIONS = (
    "You keep the memory of a long conversation between a user and an assistant. Update the "
    "summary with the new turns: keep names, numbers, dates, decisions, preferences and "
    "open questions; drop small talk. Write plain sentences in the conversation's language, "
    "in the third person, at most {words} words. Reply with the summary only."
)
# Rough words per token, only to tell the summariser a length it can aim for.
WORDS_PER_TOKEN = 0.6
# A summary shorter than this says too little to be worth a call.
MIN_SUMMARY_TOKENS = 32
TITLE_INSTRUCTIONS = (
    "Write a title for this conversation: at most six words, in the conversation's "
    "language, no quotes, no final full stop. Reply with the title only."
)
TITLE_MAX_TOKENS = 24
TITLE_MAX_CHARS = 64
# Rounds one background run may do, so a long backlog is caught up without one task
# running for ever.
MAX_ROUNDS = 4


class UsageRecorder(Protocol):
    """Where a summary's cost goes (the usage service): the summariser needs only this."""

    async def record(
        self, session: AsyncSession, *, user_id: int, model: str, usage: TokenUsage
    ) -> None: ...


class ConversationLocks(Protocol):
    """One summary at a time per conversation across processes (the factory passes the
    Redis one when REDIS_URL is set): `hold` yields False while another process holds it."""

    def hold(self, conversation_id: int) -> AbstractAsyncContextManager[bool]: ...


class Summarizer:
    """Folds a conversation's fallen-out turns into its stored summary, in the background."""

    def __init__(
        self,
        pool: async_sessionmaker[AsyncSession],
        llm: AsyncOpenAI,
        counter: TokenCounter,
        openai: OpenAISettings,
        settings: MemorySettings,
        *,
        usage: UsageRecorder | None = None,
        locks: ConversationLocks | None = None,
    ) -> None:
        self.pool = pool
        self.locks = locks
        self.usage = usage
        self.llm = llm
        self.counter = counter
        self.openai = openai
        self.settings = settings
        self.model = settings.summary_model or openai.model
        self._tasks: dict[int, asyncio.Task[Any]] = {}
        self._titles: dict[int, asyncio.Task[Any]] = {}
        self._failed_at: dict[int, float] = {}

    @property
    def enabled(self) -> bool:
        return self.settings.summary_share > 0

    def schedule(self, conversation_id: int, before_id: int, limit: int, *, user_id: int) -> bool:
        """Summarise the turns older than `before_id` (the oldest turn still sent) soon, in
        at most `limit` tokens (the summary's share of the request), on the account of
        `user_id`; False when it is off, already running, or pausing after a failure."""
        if not self.enabled or conversation_id in self._tasks:
            return False
        failed_at = self._failed_at.get(conversation_id)
        if failed_at is not None:
            if time.monotonic() - failed_at < self.settings.summary_retry_seconds:
                return False
            del self._failed_at[conversation_id]
        limit = min(limit, self.settings.summary_max_tokens)
        if limit < MIN_SUMMARY_TOKENS:
            return False
        task = asyncio.create_task(self._run(conversation_id, before_id, limit, user_id))
        self._tasks[conversation_id] = task
        task.add_done_callback(lambda _: self._tasks.pop(conversation_id, None))
        return True

    async def _run(self, conversation_id: int, before_id: int, limit: int, user_id: int) -> None:
        try:
            async with self._hold(conversation_id) as held:
                if not held:
                    log.debug("Conversation %s is summarised by another process", conversation_id)
                    return
                for _ in range(MAX_ROUNDS):
                    if not await self.fold(conversation_id, before_id, limit, user_id):
                        return
        except LLMError as exc:
            self._failed_at[conversation_id] = time.monotonic()
            log.warning(
                "Summarising conversation %s failed (%s); will retry later: %s",
                conversation_id,
                exc.kind,
                exc,
            )
        except Exception:
            self._failed_at[conversation_id] = time.monotonic()
            log.exception("Summarising conversation %s failed; will retry later", conversation_id)

    def title_later(
        self,
        conversation_id: int,
        *,
        user_id: int,
        then: Callable[[str], Awaitable[None]] | None = None,
    ) -> bool:
        """Give an untitled conversation a short title from its first turns, in the
        background (the /chats list shows it; `then` gets it once stored, to name a topic);
        False when one is being written already."""
        if conversation_id in self._titles:
            return False
        task = asyncio.create_task(self._title(conversation_id, user_id, then))
        self._titles[conversation_id] = task
        task.add_done_callback(lambda _: self._titles.pop(conversation_id, None))
        return True

    async def _title(
        self,
        conversation_id: int,
        user_id: int,
        then: Callable[[str], Awaitable[None]] | None = None,
    ) -> None:
        async with self.pool() as session:
            turns = await MessageRepository(session).first_turns(conversation_id, 2)
        if not turns:
            return
        first = turns[0][1]
        transcript = "\n".join(f"{role.value.capitalize()}: {text[:2000]}" for role, text in turns)
        request = ChatRequest(
            model=self.model,
            messages=[
                {"role": "system", "content": TITLE_INSTRUCTIONS},
                {"role": "user", "content": transcript},
            ],
            max_answer_tokens=TITLE_MAX_TOKENS,
            temperature=0.2,
            use_max_completion_tokens=self.openai.is_public_openai,
        )
        usage: TokenUsage | None = None
        try:
            completion = await complete(self.llm, request)
            usage = completion.usage or self._counted(request, completion.text)
            title = completion.text.strip().strip("\"'«»“”").rstrip(".").strip()
        except LLMError as exc:
            log.info("No title for conversation %s (%s)", conversation_id, exc.kind)
            title = ""
        # Without a title from the model, the first words of the conversation are one.
        title = " ".join((title or first).split())[:TITLE_MAX_CHARS].strip() or "…"
        try:
            async with self.pool() as session, session.begin():
                if usage is not None:
                    await self._record(session, user_id, usage)
                stored = await MessageRepository(session).set_title_unless_set(
                    conversation_id, title
                )
            if stored and then is not None:
                await then(title)
        except Exception:
            # A title is not worth more than a line in the log.
            log.exception("The title of conversation %s was not stored", conversation_id)

    def _hold(self, conversation_id: int) -> AbstractAsyncContextManager[bool]:
        # Alone, the task per conversation in `_tasks` is enough.
        if self.locks is None:
            return contextlib.nullcontext(True)
        return self.locks.hold(conversation_id)

    async def fold(self, conversation_id: int, before_id: int, limit: int, user_id: int) -> bool:
        """One round: fold the oldest unsummarised turns before `before_id` into the
        summary. True when it stored a new summary and there may be more to fold."""
        async with self.pool() as session:
            messages = MessageRepository(session)
            current = await messages.summary_of(conversation_id)
            if current is None:
                return False  # forgotten meanwhile
            summary, _, until_id = current
            rows = await messages.oldest_after(
                conversation_id, after_id=until_id, before_id=before_id, limit=256
            )
        budget = self.settings.summary_input_tokens
        taken: list[tuple[int, str, str]] = []
        total = 0
        for row_id, role, content, tokens in rows:
            if taken and total + tokens > budget:
                break
            # A single turn longer than the whole input is cut, not skipped: it is covered.
            taken.append((row_id, role.value, content[: budget * 4]))
            total += tokens
        complete_batch = total >= self.settings.summary_min_tokens or len(taken) < len(rows)
        if not taken or not complete_batch:
            return False
        request = self._request(summary, taken, limit)
        completion = await complete(self.llm, request)
        usage = completion.usage or self._counted(request, completion.text)
        text = completion.text.strip()
        if not text:
            async with self.pool() as session, session.begin():
                await self._record(session, user_id, usage)
            return False
        content = self._fit(summary_message(text), limit)
        async with self.pool() as session, session.begin():
            await self._record(session, user_id, usage)
            saved = await MessageRepository(session).save_summary(
                conversation_id,
                expected_until_id=until_id,
                summary=content,
                tokens=self.counter.message("system", content),
                until_id=taken[-1][0],
            )
        log.debug("Conversation %s summarised up to turn %s", conversation_id, taken[-1][0])
        return saved

    def _fit(self, content: str, limit: int) -> str:
        """Cut a summary that came out longer than asked, so it is sent, not left out."""
        overhead = self.counter.message("system", "")
        encoding = self.counter.encoding
        tokens = encoding.encode(content, disallowed_special=())
        while tokens and overhead + len(tokens) > limit:
            tokens = tokens[: limit - overhead]
            content = encoding.decode(tokens).rstrip("\ufffd")
            # Decoding and re-encoding may merge tokens differently; check again.
            tokens = encoding.encode(content, disallowed_special=())
            limit -= 1
        return content

    def _counted(self, request: ChatRequest, answer: str) -> TokenUsage:
        """Our own exact count of a call, for servers that report no usage."""
        prompt = REPLY_PRIMING + sum(
            self.counter.message(m["role"], m["content"]) for m in request.messages
        )
        return TokenUsage(prompt, self.counter.text(answer))

    async def _record(self, session: AsyncSession, user_id: int, usage: TokenUsage) -> None:
        if self.usage is not None:
            await self.usage.record(session, user_id=user_id, model=self.model, usage=usage)

    def _request(
        self, summary: str | None, turns: list[tuple[int, str, str]], limit: int
    ) -> ChatRequest:
        words = int(limit * WORDS_PER_TOKEN)
        previous = summary.split("\n", 1)[1] if summary and "\n" in summary else "(none yet)"
        transcript = "\n".join(f"{role.capitalize()}: {content}" for _, role, content in turns)
        return ChatRequest(
            model=self.model,
            messages=[
                {"role": "system", "content": INSTRUCTIONS.format(words=words)},
                {
                    "role": "user",
                    "content": f"Summary so far:\n{previous}\n\nNew turns:\n{transcript}",
                },
            ],
            max_answer_tokens=limit,
            temperature=0.2,
            use_max_completion_tokens=self.openai.is_public_openai,
        )

    async def drain(self, grace: float) -> int:
        """At shutdown: let running summaries finish for up to `grace` seconds, then cancel;
        a cancelled one is simply done again after the next start. Returns how many had to
        be cancelled."""
        pending = set(self._tasks.values()) | set(self._titles.values())
        if not pending:
            return 0
        _, late = await asyncio.wait(pending, timeout=grace)
        for task in late:
            task.cancel()
        if late:
            log.info("Cancelled %d summary task(s) at shutdown", len(late))
            await asyncio.wait(late, timeout=1.0)
        return len(late)
