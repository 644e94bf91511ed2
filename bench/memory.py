"""Dynamic memory: how full the context gets, how well recall finds old facts, what it costs.

- fill: 1,000 random cases (persona, turn sizes, window, mode, shares, summary, recall) over
  a history far longer than the window; the share of the conversation budget used (the
  room the persona and the new message leave) and the overflows, recounting each request.
- recall: a 300-turn conversation with 30 planted facts, then 30 questions about them
  worded differently; the share of questions whose fact's turn is in the request. Runs the
  real MemoryService on SQLite (FTS5) and, with TEST_POSTGRES_URL, on PostgreSQL.
- cost: assembly with a summary and recall, 10,000 stored turns against 100 (p50 ratio).

    .venv/bin/python bench/memory.py
    TEST_POSTGRES_URL=postgresql://postgres@127.0.0.1:5432/test .venv/bin/python bench/memory.py
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
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

import asyncpg
from sqlalchemy import insert, text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.config import MemorySettings, OpenAISettings
from app.db.engine import create_engine, create_sessionmaker
from app.db.messages import MessageRepository
from app.db.migrate import upgrade
from app.db.models import Conversation, Message, User
from app.domain.enums import MemoryMode, MessageRole
from app.domain.refs import PersonaRef
from app.memory.context import (
    Assembled,
    ContextBuilder,
    PersonaMemory,
    QAPair,
    Shares,
    Turn,
    summary_message,
)
from app.memory.service import MemoryService
from app.memory.tokens import REPLY_PRIMING, TOKENS_PER_MESSAGE, TokenCounter, load_counter
from app.memory.window import ContextBudget
from app.services.personas import ensure_default_persona, persona_for

MODEL = "test-model"  # unknown to tiktoken: the bundled cl100k_base, no download
COUNTER = load_counter(MODEL)
FILL_CASES = 1_000
FILL_TARGET = 0.95
RECALL_TARGET = 0.90
COST_SIZES = (100, 10_000)
COST_TARGET = 2.0
COST_WARMUP = 20
COST_RUNS = 200

_WORDS = (
    "the a of to and in that it is was for on with as at by this be from or have an which "
    "light water plan week morning evening budget train ticket museum dinner recipe oven "
    "flour sugar coffee meeting project deadline report email colleague weekend trip "
    "mountain river bridge city street market book chapter author story question answer "
    "idea reason because however although maybe probably usually often never always "
    "quickly slowly carefully simply really quite very small large early late warm cold "
    "bright quiet busy happy tired ready certain different decide choose prefer explain "
    "suggest consider compare measure follow improve"
)
WORDS = _WORDS.split(" ")

# (what it is, a made-up name or detail): the words a question about it would use.
FACTS = [
    ("dentist", "Dr Quillfeather"),
    ("plumber", "Mr Harrowgate"),
    ("locksmith", "Ferris Lockwood"),
    ("landlord", "Mrs Penhaligon"),
    ("accountant", "Ottoline Marsh"),
    ("veterinarian", "Dr Bramblewood"),
    ("hairdresser", "Celestine"),
    ("piano teacher", "Mr Vasquez-Orme"),
    ("cat", "Marzipan"),
    ("dog", "Biscuit"),
    ("tortoise", "Sir Plod"),
    ("wifi password", "kettle-orbit-42"),
    ("locker number", "locker 317"),
    ("allergy", "an allergy to hazelnuts"),
    ("blood type", "blood type AB negative"),
    ("favourite tea", "smoky lapsang souchong"),
    ("bicycle", "a green Gazelle bicycle"),
    ("car", "a red 1998 Saab"),
    ("gym", "the Ironclad gym"),
    ("bakery", "Crumb and Cosset"),
    ("pharmacy", "the Larkspur pharmacy"),
    ("neighbour", "Theodora Quince"),
    ("niece", "Philippa"),
    ("grandmother", "Granny Wilhelmina"),
    ("novel", "a novel called The Salt Orchard"),
    ("podcast", "a podcast named Deep Lantern"),
    ("passport", "passport expiring in March 2031"),
    ("anniversary", "the anniversary on 14 October"),
    ("insurance", "insurance with Bluewhale Mutual"),
    ("therapist", "Dr Ainsley Crowe"),
]
FACT_TEMPLATES = [
    "Oh, before I forget: my {what} is {detail}, just so you know.",
    "For the record, {detail} is my {what}.",
    "I should mention that my {what} is {detail}; it may come up later.",
    "Funny story today, and by the way my {what} is {detail}.",
]
QUESTION_TEMPLATES = [
    "Remind me, what did I tell you about my {what}?",
    "Do you recall the {what} I mentioned a while ago?",
    "What was it about my {what} again?",
    "Earlier I talked about my {what}: what did I say?",
    "I can't remember the details of my {what}, can you help?",
]


def sentence(rng: random.Random, words: int) -> str:
    text = " ".join(rng.choices(WORDS, k=words))
    return text[0].upper() + text[1:] + "."


def turn_text(rng: random.Random, role: MessageRole) -> str:
    if role is MessageRole.USER:
        return sentence(rng, rng.randint(10, 40))
    return sentence(rng, rng.randint(30, 160))


def recount(counter: TokenCounter, messages: list[dict[str, str]]) -> int:
    """Prompt tokens recounted from the text, as the fake OpenAI server counts them."""
    return REPLY_PRIMING + sum(
        TOKENS_PER_MESSAGE + counter.text(m["role"]) + counter.text(m["content"]) for m in messages
    )


# --- fill ---------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class FillResult:
    fills: list[float]
    overflows: int
    inexact: int


def random_persona(rng: random.Random) -> PersonaMemory:
    system = "You are a helpful assistant. " + sentence(rng, rng.randint(10, 400))
    pairs = []
    for _ in range(rng.randint(0, 5)):
        q, a = sentence(rng, rng.randint(4, 15)), sentence(rng, rng.randint(10, 60))
        pairs.append(QAPair(q, a, COUNTER.message("user", q) + COUNTER.message("assistant", a)))
    return PersonaMemory("P", system, COUNTER.message("system", system), pairs)


def fill_case(rng: random.Random) -> tuple[float, bool, bool]:
    window = rng.choice([4_096, 8_192, 16_000, 32_000])
    mode = rng.choice(list(MemoryMode))
    reserve = rng.choice([512, 1_024]) if mode is MemoryMode.CHAT else window // 4
    budget = ContextBudget(window, reserve, 64)
    shares = Shares(rng.choice([0.0, 0.1, 0.15, 0.25]), rng.choice([0.0, 0.1, 0.15, 0.25]))
    new_text = sentence(rng, rng.randint(5, 120))
    builder = ContextBuilder(
        random_persona(rng),
        Turn("user", new_text, COUNTER.message("user", new_text)),
        budget,
        shares,
    )
    if rng.random() < 0.7:
        content = summary_message(sentence(rng, rng.randint(40, 300)))
        builder.use_summary(Turn("system", content, COUNTER.message("system", content)))
    # A history far longer than any window, newest last.
    history: list[Turn] = []
    for i in range(1, 1_500):
        role = MessageRole.USER if i % 2 else MessageRole.ASSISTANT
        text = turn_text(rng, role)
        history.append(Turn(role.value, text, COUNTER.message(role.value, text), i))
    newest_first: Iterator[Turn] = iter(reversed(history))
    for turn in newest_first:
        if not builder.offer(turn):
            break
    boundary = builder.oldest_recent_id or len(history)
    candidates = rng.sample(range(1, boundary), k=min(8, boundary - 1))
    builder.recall(history[i - 1] for i in candidates)
    builder.release_recall()
    for turn in newest_first:
        if not builder.offer(turn):
            break
    assembled = builder.build()
    breakdown = assembled.breakdown
    assert breakdown is not None
    fill = breakdown.conversation_used / breakdown.conversation_budget
    recounted = recount(COUNTER, assembled.as_api())
    overflow = recounted > budget.prompt_limit
    return fill, overflow, recounted != assembled.prompt_tokens


def measure_fill() -> FillResult:
    rng = random.Random(4)
    fills, overflows, inexact = [], 0, 0
    for _ in range(FILL_CASES):
        fill, overflow, wrong = fill_case(rng)
        fills.append(fill)
        overflows += overflow
        inexact += wrong
    return FillResult(fills, overflows, inexact)


# --- the database -------------------------------------------------------------------------


def memory_service(window: int, answer: int = 1_024) -> MemoryService:
    openai = OpenAISettings(
        api_key="unused",
        base_url="http://127.0.0.1:1/v1",
        model=MODEL,
        context_window=window,
        max_answer_tokens=answer,
        safety_margin_tokens=64,
        _env_file=None,
    )
    return MemoryService(COUNTER, openai, MemorySettings(_env_file=None))


async def add_conversation(
    session: AsyncSession, user_id: int, persona_id: int, turns: list[tuple[MessageRole, str]]
) -> tuple[int, list[int]]:
    session.add(User(id=user_id, first_name=f"user{user_id}", has_access=True))
    await session.flush()
    conversation = Conversation(user_id=user_id, persona_id=persona_id)
    session.add(conversation)
    await session.flush()
    rows = [
        {
            "conversation_id": conversation.id,
            "user_id": user_id,
            "persona_id": persona_id,
            "role": role,
            "content": content,
            "token_count": COUNTER.message(role.value, content),
        }
        for role, content in turns
    ]
    ids: list[int] = []
    for start in range(0, len(rows), 2_000):
        result = await session.execute(
            insert(Message).returning(Message.id), rows[start : start + 2_000]
        )
        ids += list(result.scalars())
    if session.get_bind().dialect.name == "postgresql":
        # Autovacuum analyzes a table this size within a minute in a real database; without
        # statistics the planner would not know the full-text index is the selective one.
        await session.execute(text("ANALYZE messages"))
    return conversation.id, ids


async def add_summary(session: AsyncSession, conversation_id: int, until_id: int) -> None:
    rng = random.Random(conversation_id)
    content = summary_message(sentence(rng, 250))
    await MessageRepository(session).save_summary(
        conversation_id,
        expected_until_id=None,
        summary=content,
        tokens=COUNTER.message("system", content),
        until_id=until_id,
    )


async def ask(
    pool: async_sessionmaker[AsyncSession],
    memory: MemoryService,
    persona: PersonaRef,
    user_id: int,
    question: str,
) -> Assembled:
    """One assembly as ChatService.reply does it; the new turn is rolled back."""
    async with pool() as session:
        persona_memory = await memory.persona_memory(session, persona)
        turn = memory.user_turn(question)
        builder = memory.builder(persona_memory, turn, MODEL)
        conversation = await memory.conversation(session, user_id, persona.id)
        assembled = await memory.assemble(session, builder, conversation, query=question)
        await memory.remember(session, conversation, turn)
        await session.rollback()
    return assembled


# --- recall -------------------------------------------------------------------------------


async def measure_recall(pool: async_sessionmaker[AsyncSession]) -> tuple[int, int, float]:
    """(questions whose fact is in the request, questions, mean turns recalled)."""
    rng = random.Random(7)
    memory = memory_service(window=8_192)
    turns: list[tuple[MessageRole, str]] = []
    planted = sorted(rng.sample(range(0, 240, 2), len(FACTS)))  # user turns, all old
    fact_at = dict(zip(planted, range(len(FACTS)), strict=True))
    for i in range(300):
        role = MessageRole.USER if i % 2 == 0 else MessageRole.ASSISTANT
        if i in fact_at:
            what, detail = FACTS[fact_at[i]]
            template = rng.choice(FACT_TEMPLATES)
            turns.append((role, template.format(what=what, detail=detail)))
        else:
            turns.append((role, turn_text(rng, role)))
    async with pool() as session, session.begin():
        persona = await ensure_default_persona(session, COUNTER)
        _, ids = await add_conversation(session, 1, persona.id, turns)
        ref = await persona_for(session, persona.id)
    found, recalled = 0, []
    for position, index in fact_at.items():
        what, _ = FACTS[index]
        question = rng.choice(QUESTION_TEMPLATES).format(what=what)
        assembled = await ask(pool, memory, ref, 1, question)
        found += ids[position] in {t.id for t in assembled.turns}
        assert assembled.breakdown is not None
        recalled.append(assembled.breakdown.recalled_turns)
    return found, len(fact_at), statistics.fmean(recalled)


# --- cost ---------------------------------------------------------------------------------


COST_QUESTION = "What did we decide about the train ticket and the museum budget last week?"


def cost_turn(distance: int) -> tuple[MessageRole, str]:
    """The turn `distance` places before the newest: the same in both conversations, so
    they assemble the same newest turns and differ only in how much lies behind them."""
    rng = random.Random(distance)
    role = MessageRole.ASSISTANT if distance % 2 == 0 else MessageRole.USER
    return role, turn_text(rng, role)


async def measure_cost(pool: async_sessionmaker[AsyncSession]) -> dict[int, list[float]]:
    memory = memory_service(window=8_192)
    async with pool() as session, session.begin():
        persona = await ensure_default_persona(session, COUNTER)
        for user_id, size in enumerate(COST_SIZES, start=10):
            turns = [cost_turn(size - 1 - position) for position in range(size)]
            conversation_id, ids = await add_conversation(session, user_id, persona.id, turns)
            await add_summary(session, conversation_id, ids[size // 2])
        ref = await persona_for(session, persona.id)
    users = dict(zip(COST_SIZES, range(10, 10 + len(COST_SIZES)), strict=True))
    samples: dict[int, list[float]] = {size: [] for size in COST_SIZES}
    for run in range(COST_WARMUP + COST_RUNS):
        for size in COST_SIZES:  # interleaved: drift hits both sizes alike
            started = time.perf_counter()
            assembled = await ask(pool, memory, ref, users[size], COST_QUESTION)
            elapsed = (time.perf_counter() - started) * 1000
            breakdown = assembled.breakdown
            assert breakdown is not None and breakdown.summary > 0 and breakdown.recalled > 0
            if run >= COST_WARMUP:
                samples[size].append(elapsed)
    return samples


# --- running it ---------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class DbFigures:
    backend: str
    recall_found: int
    recall_asked: int
    recall_mean_turns: float
    cost: dict[int, list[float]]


async def measure_db(backend: str, url: str) -> DbFigures:
    engine = create_engine(url)
    try:
        await upgrade(engine)
        pool = create_sessionmaker(engine)
        found, asked, mean_turns = await measure_recall(pool)
        cost = await measure_cost(pool)
        return DbFigures(backend, found, asked, mean_turns, cost)
    finally:
        await engine.dispose()


@asynccontextmanager
async def postgres_database(admin: asyncpg.Connection, dsn: str) -> AsyncIterator[str]:
    name = f"tba_bench_{uuid.uuid4().hex[:12]}"
    await admin.execute(f'CREATE DATABASE "{name}"')
    try:
        yield dsn.rsplit("/", 1)[0].replace("postgresql://", "postgresql+asyncpg://") + "/" + name
    finally:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


async def measure_postgres(base: str) -> tuple[DbFigures | None, str | None]:
    dsn = re.sub(r"^postgres(ql)?(\+asyncpg)?://", "postgresql://", base)
    try:
        admin = await asyncpg.connect(dsn, timeout=5)
    except (OSError, TimeoutError, asyncpg.PostgresError) as exc:
        return None, f"PostgreSQL at TEST_POSTGRES_URL is unreachable: {exc}"
    try:
        async with postgres_database(admin, dsn) as url:
            return await measure_db("postgresql", url), None
    finally:
        await admin.close()


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    rank = (len(ordered) - 1) * q / 100
    low = int(rank)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


def line(passed: bool, text: str) -> bool:
    print(f"{'PASS' if passed else 'MISS'}  {text}")
    return passed


async def main() -> int:
    ok = True
    fill = measure_fill()
    mean_fill = statistics.fmean(fill.fills)
    print(
        f"fill: {FILL_CASES:,} random cases (windows 4k-32k, chat/task, shares 0-25%, summary "
        f"in 70%), 1,500-turn histories\n  conversation budget used: mean "
        f"{mean_fill:.1%}, p5 {percentile(fill.fills, 5):.1%}, min {min(fill.fills):.1%}; "
        f"overflows {fill.overflows}, inexact counts {fill.inexact}"
    )
    results: list[DbFigures] = []
    with tempfile.TemporaryDirectory(prefix="tba-bench-") as tmp:
        results.append(await measure_db("sqlite", f"sqlite+aiosqlite:///{Path(tmp) / 'm.db'}"))
    skipped = None
    base = os.environ.get("TEST_POSTGRES_URL")
    if base:
        figures, skipped = await measure_postgres(base)
        if figures is not None:
            results.append(figures)
    else:
        skipped = "TEST_POSTGRES_URL is not set"
    for r in results:
        print(
            f"recall ({r.backend}): 300 turns, {r.recall_asked} planted facts, window 8,192: "
            f"{r.recall_found}/{r.recall_asked} questions have the fact's turn in the request "
            f"(mean {r.recall_mean_turns:.1f} turns recalled)"
        )
        small, large = (r.cost[size] for size in COST_SIZES)
        print(
            f"cost ({r.backend}): p50 {percentile(small, 50):.2f} ms for {COST_SIZES[0]:,} "
            f"turns, {percentile(large, 50):.2f} ms for {COST_SIZES[1]:,} (p90 "
            f"{percentile(small, 90):.2f} / {percentile(large, 90):.2f} ms), with summary + recall"
        )
    if skipped:
        print(f"PostgreSQL: skipped, {skipped}.")
    print()
    ok &= line(mean_fill >= FILL_TARGET, f"fill: mean {mean_fill:.1%} >= {FILL_TARGET:.0%}")
    ok &= line(
        fill.overflows == 0 and fill.inexact == 0,
        f"fill: {fill.overflows} overflows, {fill.inexact} inexact over {FILL_CASES:,} cases",
    )
    for r in results:
        share = r.recall_found / r.recall_asked
        ok &= line(share >= RECALL_TARGET, f"recall ({r.backend}): {share:.0%} >= 90%")
        small, large = (percentile(r.cost[size], 50) for size in COST_SIZES)
        ratio = large / small
        ok &= line(
            ratio <= COST_TARGET,
            f"cost ({r.backend}): {COST_SIZES[1]:,}/{COST_SIZES[0]:,} turns p50 ratio "
            f"{ratio:.2f}x <= {COST_TARGET}x",
        )
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
