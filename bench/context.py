"""Context assembly cost versus history length, on SQLite (and PostgreSQL when available).

Times the code path `ChatService.reply` runs for every message before calling the model:
persona memory, the new user turn, the budget builder, the conversation lookup, storing the
turn and assembling the newest history that fits. The user's turn is rolled back after each
measurement, so every iteration sees the same history.

    .venv/bin/python bench/context.py
    TEST_POSTGRES_URL=postgresql://postgres@127.0.0.1:5432/test .venv/bin/python bench/context.py
"""

from __future__ import annotations

import asyncio
import os
import random
import re
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

import asyncpg
from sqlalchemy import insert
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.config import OpenAISettings
from app.db.engine import create_engine, create_sessionmaker
from app.db.migrate import upgrade
from app.db.models import Conversation, Message, User
from app.domain.enums import MemoryKind, MessageRole
from app.domain.refs import PersonaRef
from app.memory.context import Assembled
from app.memory.service import MemoryService
from app.memory.tokens import REPLY_PRIMING, TOKENS_PER_MESSAGE, TokenCounter, load_counter
from app.services import personas
from app.services.personas import ensure_default_persona

MODEL = "test-model"  # unknown to tiktoken: the bundled cl100k_base, no download
WINDOW = 16_000
ANSWER_TOKENS = 1_024
MARGIN = 64
SIZES = (100, 10_000)
FACTS = 50
PAIRS = 50
WARMUP = 30
ITERATIONS = 300
TARGET_RATIO = 1.5
STEPS = ("persona_memory", "user_turn+builder", "conversation", "assemble", "remember")
NEW_MESSAGE = (
    "Could you remind me what we decided about the garden layout last week, and whether the "
    "tomatoes should go next to the fence or near the shed where the light is better?"
)

_WORDS = (
    "the a of to and in that it is was for on with as at by this be from or have an which "
    "garden light water plan week morning evening shed fence tomato basil soil compost rain "
    "sun budget train ticket museum dinner recipe oven flour sugar coffee meeting project "
    "deadline report email colleague weekend trip mountain river bridge city street market "
    "book chapter author story question answer idea reason because however although maybe "
    "probably usually often never always quickly slowly carefully simply really quite very "
    "small large early late warm cold bright quiet busy happy tired ready certain different "
    "remember decide choose prefer explain suggest consider compare measure follow improve"
)
WORDS = _WORDS.split(" ")


@dataclass(frozen=True, slots=True)
class Figures:
    backend: str
    history: int
    samples_ms: list[float]
    history_turns: int
    prompt_tokens: int
    prompt_tokens_recounted: int
    steps_ms: dict[str, list[float]]

    @property
    def p50(self) -> float:
        return percentile(self.samples_ms, 50)

    @property
    def p90(self) -> float:
        return percentile(self.samples_ms, 90)

    @property
    def mean(self) -> float:
        return statistics.fmean(self.samples_ms)


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    rank = (len(ordered) - 1) * q / 100
    low = int(rank)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


def sentence(rng: random.Random, words: int) -> str:
    text = " ".join(rng.choices(WORDS, k=words))
    return text[0].upper() + text[1:] + "."


def turn_content(distance: int) -> tuple[MessageRole, str]:
    """The turn `distance` places before the newest one: the same in every conversation, so
    both sizes assemble the same newest turns and differ only in how much lies behind them."""
    rng = random.Random(distance)
    if distance % 2 == 0:  # the newest stored turn is the assistant's last answer
        return MessageRole.ASSISTANT, sentence(rng, rng.randint(120, 300))
    return MessageRole.USER, sentence(rng, rng.randint(15, 45))


def recount(counter: TokenCounter, messages: list[dict[str, str]]) -> int:
    """Prompt tokens recounted from the text, as the fake OpenAI server counts them."""
    return REPLY_PRIMING + sum(
        TOKENS_PER_MESSAGE + counter.text(m["role"]) + counter.text(m["content"]) for m in messages
    )


class Bench:
    def __init__(self, backend: str, url: str) -> None:
        self.backend = backend
        self.url = url
        self.counter = load_counter(MODEL)
        self.memory = MemoryService(
            self.counter,
            OpenAISettings(
                api_key="unused",
                base_url="http://127.0.0.1:1/v1",
                model=MODEL,
                context_window=WINDOW,
                max_answer_tokens=ANSWER_TOKENS,
                safety_margin_tokens=MARGIN,
                _env_file=None,
            ),
        )
        self.persona = PersonaRef(0, "")

    async def add_entry(
        self,
        session: AsyncSession,
        persona_id: int,
        kind: MemoryKind,
        text: str,
        answer: str | None = None,
    ) -> None:
        """A persona memory entry, added the way the persona editor adds it."""
        editor = personas.PersonaService(self.counter, lambda: self.memory.budget_for(MODEL))
        await editor.add_entry(session, persona_id, kind, text, answer)

    async def seed(self, pool: async_sessionmaker[AsyncSession]) -> None:
        rng = random.Random(12345)
        async with pool() as session, session.begin():
            persona = await ensure_default_persona(session, self.counter)
            for i in range(FACTS):
                fact = f"Fact {i}: " + sentence(rng, rng.randint(8, 16))
                await self.add_entry(session, persona.id, MemoryKind.FACT, fact)
            for i in range(PAIRS):
                question = f"Question {i}: " + sentence(rng, rng.randint(6, 14)) + "?"
                answer = sentence(rng, rng.randint(20, 45))
                await self.add_entry(session, persona.id, MemoryKind.QA, question, answer)
            self.persona = await personas.persona_for(session, persona.id)
            for user_id, size in enumerate(SIZES, start=1):
                session.add(User(id=user_id, first_name=f"user{user_id}", has_access=True))
                await session.flush()
                conversation = Conversation(user_id=user_id, persona_id=persona.id)
                session.add(conversation)
                await session.flush()
                rows = []
                for position in range(size):
                    role, content = turn_content(size - 1 - position)
                    rows.append(
                        {
                            "conversation_id": conversation.id,
                            "user_id": user_id,
                            "persona_id": persona.id,
                            "role": role,
                            "content": content,
                            "token_count": self.counter.message(role.value, content),
                        }
                    )
                for start in range(0, len(rows), 2_000):
                    await session.execute(insert(Message), rows[start : start + 2_000])

    async def once(
        self, pool: async_sessionmaker[AsyncSession], user_id: int
    ) -> tuple[list[float], Assembled]:
        """One assembly as the bot does it: (cumulative ms after each step, the result)."""
        memory = self.memory
        clock = time.perf_counter
        async with pool() as session:
            started = clock()
            # The revision comes with the user's row in the bot; the memory is then cached.
            persona = await memory.persona_memory(session, self.persona)
            t_persona = clock()
            turn = memory.user_turn(NEW_MESSAGE)
            builder = memory.builder(persona, turn, MODEL)
            t_builder = clock()
            conversation = await memory.conversation(session, user_id, self.persona.id)
            t_conversation = clock()
            assembled = await memory.assemble(session, builder, conversation)
            t_assemble = clock()
            await memory.remember(session, conversation, turn)
            t_remember = clock()
            await session.rollback()
        marks = [t_persona, t_builder, t_conversation, t_assemble, t_remember]
        return [(mark - started) * 1000 for mark in marks], assembled

    async def run(self, pool: async_sessionmaker[AsyncSession]) -> list[Figures]:
        await self.seed(pool)
        users = dict(zip(SIZES, range(1, len(SIZES) + 1), strict=True))
        for _ in range(WARMUP):
            for size in SIZES:
                await self.once(pool, users[size])
        samples: dict[int, list[float]] = {size: [] for size in SIZES}
        steps: dict[int, dict[str, list[float]]] = {size: {s: [] for s in STEPS} for size in SIZES}
        shapes: dict[int, set[tuple[int, int]]] = {size: set() for size in SIZES}
        last: dict[int, Assembled] = {}
        # Interleaved, so that drift (page cache, other load) hits both sizes alike.
        for _ in range(ITERATIONS):
            for size in SIZES:
                marks, assembled = await self.once(pool, users[size])
                samples[size].append(marks[-1])
                for name, mark, before in zip(STEPS, marks, [0.0, *marks], strict=False):
                    steps[size][name].append(mark - before)
                shapes[size].add((assembled.history_turns, assembled.prompt_tokens))
                last[size] = assembled
        figures = []
        for size in SIZES:
            if len(shapes[size]) != 1:
                raise AssertionError(f"{size} messages: assembly changed between runs")
            [(turns, tokens)] = shapes[size]
            recounted = recount(self.counter, last[size].as_api())
            figures.append(
                Figures(self.backend, size, samples[size], turns, tokens, recounted, steps[size])
            )
        return figures


async def measure(backend: str, url: str) -> list[Figures]:
    engine = create_engine(url)
    try:
        await upgrade(engine)
        return await Bench(backend, url).run(create_sessionmaker(engine))
    finally:
        await engine.dispose()


@asynccontextmanager
async def postgres_database(admin: asyncpg.Connection, dsn: str) -> AsyncIterator[str]:
    """A throwaway database next to TEST_POSTGRES_URL's, dropped afterwards."""
    name = f"tba_bench_{uuid.uuid4().hex[:12]}"
    await admin.execute(f'CREATE DATABASE "{name}"')
    try:
        yield dsn.rsplit("/", 1)[0].replace("postgresql://", "postgresql+asyncpg://") + "/" + name
    finally:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


async def measure_postgres(base: str) -> tuple[list[Figures], str | None]:
    """The figures on PostgreSQL, or why there are none."""
    dsn = re.sub(r"^postgres(ql)?(\+asyncpg)?://", "postgresql://", base)
    try:
        admin = await asyncpg.connect(dsn, timeout=5)
    except (OSError, TimeoutError, asyncpg.PostgresError) as exc:
        return [], f"PostgreSQL at TEST_POSTGRES_URL is unreachable: {exc}"
    try:
        async with postgres_database(admin, dsn) as url:
            return await measure("postgresql", url), None
    finally:
        await admin.close()


def print_table(figures: list[Figures]) -> None:
    print(
        f"{'backend':<11}{'history':>9}{'runs':>6}{'p50 ms':>9}{'p90 ms':>9}{'mean ms':>9}"
        f"{'turns':>7}{'prompt tok':>12}{'recounted':>11}"
    )
    for f in figures:
        print(
            f"{f.backend:<11}{f.history:>9,}{len(f.samples_ms):>6}{f.p50:>9.2f}{f.p90:>9.2f}"
            f"{f.mean:>9.2f}{f.history_turns:>7}{f.prompt_tokens:>12,}"
            f"{f.prompt_tokens_recounted:>11,}"
        )
    print()
    print("p50 per step, ms: " + ", ".join(STEPS))
    for f in figures:
        parts = "  ".join(f"{percentile(f.steps_ms[name], 50):6.2f}" for name in STEPS)
        print(f"{f.backend:<11}{f.history:>9,}  {parts}")


async def main() -> int:
    limit = WINDOW - ANSWER_TOKENS - MARGIN
    print("Context assembly per message: persona memory, new turn + budget builder, conversation,")
    print("assemble, store the turn (as ChatService.reply runs them); the turn is rolled back.")
    print(
        f"Persona: {FACTS} facts + {PAIRS} question/answer pairs. Model {MODEL!r} (cl100k_base),\n"
        f"window {WINDOW:,}, answer reserve {ANSWER_TOKENS:,}, margin {MARGIN} -> prompt "
        f"limit {limit:,} tokens."
    )
    print(
        f"Histories of {' and '.join(f'{s:,}' for s in SIZES)} stored messages (same newest "
        f"turns);\n{WARMUP} warm-up + {ITERATIONS} timed runs per size, interleaved."
    )
    print()
    results: list[Figures] = []
    skipped: str | None = None
    with tempfile.TemporaryDirectory(prefix="tba-bench-") as tmp:
        results += await measure("sqlite", f"sqlite+aiosqlite:///{Path(tmp) / 'context.db'}")
    base = os.environ.get("TEST_POSTGRES_URL")
    if not base:
        skipped = "TEST_POSTGRES_URL is not set (e.g. postgresql://postgres@127.0.0.1:5432/test)"
    else:
        figures, skipped = await measure_postgres(base)
        results += figures
    print_table(results)
    print()
    if skipped:
        print(f"PostgreSQL: skipped, {skipped}.")
    ok = True
    by_backend: dict[str, dict[int, Figures]] = {}
    for f in results:
        by_backend.setdefault(f.backend, {})[f.history] = f
    for backend, sizes in by_backend.items():
        small, large = sizes[SIZES[0]], sizes[SIZES[-1]]
        ratio = large.p50 / small.p50
        print(
            f"{backend}: p50 {large.history:,} / {small.history:,} messages = {ratio:.2f}x "
            f"({large.p50:.2f} ms / {small.p50:.2f} ms)"
        )
    for backend, sizes in by_backend.items():
        small, large = sizes[SIZES[0]], sizes[SIZES[-1]]
        ratio = large.p50 / small.p50
        passed = ratio <= TARGET_RATIO
        ok &= passed
        print(
            f"{'PASS' if passed else 'MISS'}  {backend}: p50 ratio {SIZES[-1]:,}/{SIZES[0]:,} "
            f"messages <= {TARGET_RATIO}x: {ratio:.2f}x"
        )
    for f in results:
        if f.prompt_tokens != f.prompt_tokens_recounted or f.prompt_tokens > limit:
            ok = False
            print(
                f"MISS  {f.backend} {f.history:,}: prompt tokens {f.prompt_tokens:,} stored vs "
                f"{f.prompt_tokens_recounted:,} recounted (limit {limit:,})"
            )
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
