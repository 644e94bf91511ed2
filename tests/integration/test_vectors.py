"""Turns' vectors on a real database, SQLite (numpy in the process) and PostgreSQL
(pgvector) alike: stored once, the ones still to embed found, the nearest turns of the
conversation found first; and PostgreSQL without pgvector says so and leaves recall to
words."""

from __future__ import annotations

import logging
import re

import asyncpg
import numpy as np
import pytest
from openai import AsyncOpenAI
from sqlalchemy import select, text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.db.documents import DocumentRepository
from app.db.engine import create_engine, create_sessionmaker
from app.db.migrate import upgrade
from app.db.models import MessageVector
from app.db.recall import RecallRepository
from app.db.vectors import VectorRepository
from app.llm.embeddings import Embedder
from app.memory.embeddings import Embeddings
from app.memory.service import CurrentConversation, MemoryService
from tests.fakes import FakeOpenAI
from tests.integration.test_recall import memory_service, setup, talk

MODEL = "test-embedding"


def unit(*values: float) -> list[float]:
    vector = np.asarray(values, dtype=np.float32)
    return list(vector / np.linalg.norm(vector))


async def conversation_with(
    pool: async_sessionmaker[AsyncSession], memory: MemoryService, texts: list[str]
) -> tuple[CurrentConversation, list[int]]:
    async with pool() as session, session.begin():
        persona_id, _ = await setup(session, memory)
        conversation = await memory.conversation(session, 7, persona_id)
        ids = await talk(session, memory, conversation, texts)
    return conversation, ids


async def ready(pool: async_sessionmaker[AsyncSession]) -> str:
    """The database's dialect, with pgvector prepared on PostgreSQL (as the bot's start)."""
    async with pool() as session:
        dialect = session.get_bind().dialect.name
        if dialect == "postgresql":
            assert await VectorRepository(session).has_pgvector()
            await session.commit()
    return dialect


def index(pool: async_sessionmaker[AsyncSession], dialect: str) -> Embeddings:
    client = AsyncOpenAI(api_key="k", base_url="http://127.0.0.1:1/v1", max_retries=0)
    return Embeddings(pool, Embedder(client, MODEL, timeout=1), dialect=dialect)


async def test_vectors_are_stored_once_and_the_nearest_turns_come_first(
    pool: async_sessionmaker[AsyncSession], database_url: str
) -> None:
    memory = memory_service()
    texts = ["about cats", "cats purr", "about trains", "trains run", "about tea", "tea brews"]
    conversation, ids = await conversation_with(pool, memory, texts)
    directions = [unit(1, 0, 0), unit(1, 0.1, 0), unit(0, 1, 0), unit(0, 1, 0.2), unit(0, 0, 1)]
    async with pool() as session:
        vectors = VectorRepository(session)
        pending = await vectors.pending(after_id=0, model=MODEL, limit=10)
        assert [row[0] for row in pending] == ids  # every spoken turn, oldest first
        rows = [(i, conversation.id, v) for i, v in zip(ids, directions, strict=False)]
        await vectors.store(MODEL, rows)
        await vectors.store(MODEL, rows[:1])  # again (another process): kept once
        await session.commit()
        assert [row[0] for row in await vectors.pending(after_id=0, model=MODEL, limit=10)] == [
            ids[5]
        ]
        # Another model's vectors are another set.
        assert len(await vectors.pending(after_id=0, model="other", limit=10)) == 6
        dialect = session.get_bind().dialect.name
        embeddings = index(pool, dialect)
        if dialect == "postgresql":
            assert await vectors.has_pgvector()
        nearest = await embeddings.nearest(
            session, conversation.id, unit(0, 1, 0.1), before_id=ids[5], limit=3
        )
        assert [row[0] for row in nearest][:2] == [ids[3], ids[2]] or [row[0] for row in nearest][
            :2
        ] == [ids[2], ids[3]]
        assert {row[0] for row in nearest[:2]} == {ids[2], ids[3]}
        assert nearest[0][2] in ("about trains", "trains run")
        # Only turns older than the boundary.
        older = await embeddings.nearest(
            session, conversation.id, unit(0, 1, 0), before_id=ids[2], limit=5
        )
        assert {row[0] for row in older} == {ids[0], ids[1]}
        # A rewritten turn's vector goes, and the cache reads the conversation again.
        await vectors.forget(ids[2])
        await session.commit()
        embeddings.changed(conversation.id, ids[2])
        again = await embeddings.nearest(
            session, conversation.id, unit(0, 1, 0), before_id=ids[5], limit=1
        )
        assert [row[0] for row in again] == [ids[3]]
    await embeddings.close()


async def test_the_worker_embeds_the_backlog_in_batches_and_asks_nothing_when_done(
    pool: async_sessionmaker[AsyncSession], database_url: str, llm: FakeOpenAI
) -> None:
    memory = memory_service()
    conversation, ids = await conversation_with(pool, memory, [f"turn {i}" for i in range(7)])
    dialect = await ready(pool)
    client = AsyncOpenAI(api_key="test-key", base_url=llm.base_url, max_retries=0)
    embeddings = Embeddings(pool, Embedder(client, MODEL, timeout=5), batch=3, dialect=dialect)
    assert await embeddings.catch_up() == 7
    assert [len(call) for call in llm.embedding_calls] == [3, 3, 1]
    assert await embeddings.catch_up() == 0  # nothing left: no call
    assert len(llm.embedding_calls) == 3
    async with pool() as session:
        found = await embeddings.nearest(
            session,
            conversation.id,
            llm.embedding_of("turn 4"),
            before_id=ids[-1] + 1,
            limit=1,
        )
    assert [row[2] for row in found] == ["turn 4"]
    await client.close()


async def test_postgresql_without_pgvector_warns_once_and_recall_goes_by_words(
    postgres_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    """A role that may not create extensions, on a database without pgvector (as on a
    managed server without it): one WARNING, and no vector is ever searched."""
    dsn = re.sub(r"^postgresql\+asyncpg://", "postgresql://", postgres_url)
    base, name = dsn.rsplit("/", 1)
    role = f"plain_{name[-12:]}".lower().replace("-", "_")
    admin = await asyncpg.connect(dsn, timeout=5)
    try:
        await admin.execute(f'CREATE ROLE "{role}" LOGIN')
        await admin.execute(f'GRANT ALL ON SCHEMA public TO "{role}"')
    finally:
        await admin.close()
    url = f"postgresql+asyncpg://{role}@{base.split('://', 1)[1].split('@')[-1]}/{name}"
    engine = create_engine(url)
    try:
        await upgrade(engine)
        embeddings = index(create_sessionmaker(engine), "postgresql")
        with caplog.at_level(logging.WARNING):
            await embeddings.start()
        assert not embeddings.usable
        assert [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING] == [
            "PostgreSQL has no pgvector extension (CREATE EXTENSION vector): recall goes by "
            "words only"
        ]
        assert await embeddings.query("anything") is None  # never asked for a vector
        await embeddings.close()
    finally:
        await engine.dispose()
        admin = await asyncpg.connect(dsn.rsplit("/", 1)[0] + "/postgres", timeout=5)
        try:
            await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            await admin.execute(f'DROP ROLE IF EXISTS "{role}"')
        finally:
            await admin.close()


async def test_document_parts_are_embedded_and_the_nearest_found(
    pool: async_sessionmaker[AsyncSession], database_url: str, llm: FakeOpenAI
) -> None:
    memory = memory_service()
    conversation, ids = await conversation_with(pool, memory, ["here is a book"])
    async with pool() as session:
        await DocumentRepository(session).add(
            conversation_id=conversation.id,
            message_id=ids[0],
            file_name="book.md",
            parts=[("about cats and dogs", 5), ("about saffron broth", 5), ("about trains", 4)],
        )
        await session.commit()
        dialect = session.get_bind().dialect.name
        if dialect == "postgresql":
            assert await VectorRepository(session).has_pgvector()
            await session.commit()
    client = AsyncOpenAI(api_key="test-key", base_url=llm.base_url, max_retries=0)
    embeddings = Embeddings(pool, Embedder(client, MODEL, timeout=5), dialect=dialect)
    assert await embeddings.catch_up() == 4  # the turn and the three parts
    async with pool() as session:
        found = await embeddings.nearest_parts(
            session, conversation.id, llm.embedding_of("saffron broth"), limit=2
        )
    assert found[0][4] == "about saffron broth" and found[0][1:4] == ("book.md", 2, 3)
    assert len(found) == 2
    await client.close()


async def test_recall_in_other_conversations_by_words_and_by_meaning(
    pool: async_sessionmaker[AsyncSession], database_url: str
) -> None:
    """The current conversation's turns older than the boundary, and every turn of the
    others; never a newer turn of the current one."""
    memory = memory_service()
    first, old = await conversation_with(pool, memory, ["saffron soup recipe", "noted"])
    async with pool() as session, session.begin():
        current = await memory.new_conversation(session, 7, first.persona_id)
        assert current.id != first.id
        new = await talk(session, memory, current, ["saffron again", "noted", "recent saffron"])
    async with pool() as session:
        dialect = session.get_bind().dialect.name
        vectors = VectorRepository(session)
        if dialect == "postgresql":
            assert await vectors.has_pgvector()
        direction = unit(1, 0, 0)
        owned = [(old[0], first.id), *((n, current.id) for n in new)]
        await vectors.store(MODEL, [(i, c, direction) for i, c in owned])
        await session.commit()
        recall = RecallRepository(session)
        alone = await recall.search(current.id, ["saffron"], before_id=new[2], limit=5)
        assert [row[0] for row in alone] == [new[0]]
        both = await recall.search(
            current.id, ["saffron"], before_id=new[2], limit=5, others=[first.id]
        )
        assert {row[0] for row in both} == {new[0], old[0]}
        embeddings = index(pool, dialect)
        near = await embeddings.nearest(
            session, current.id, direction, before_id=new[2], limit=5, others=[first.id]
        )
        assert {row[0] for row in near} == {new[0], new[1], old[0]}
    await embeddings.close()


async def test_pgvector_gets_its_own_column_type_once_and_the_stored_vectors_stay(
    postgres_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    """The migrations make real[] columns (they cannot count on pgvector); the first
    process that finds pgvector converts them to halfvec, vectors stored before kept, and
    the next start finds nothing to do."""
    engine = create_engine(postgres_url)
    try:
        await upgrade(engine)
        pool = create_sessionmaker(engine)
        memory = memory_service()
        conversation, ids = await conversation_with(pool, memory, ["cats", "trains", "tea"])
        directions = [unit(1, 0, 0), unit(0, 1, 0), unit(0, 0.6, 0.8)]
        async with pool() as session:
            vectors = VectorRepository(session)
            types = "SELECT udt_name FROM information_schema.columns WHERE column_name = 'vector'"
            assert set(await session.scalars(text(types))) == {"_float4"}  # real[]
            rows = [(i, conversation.id, v) for i, v in zip(ids, directions, strict=True)]
            await vectors.store(MODEL, rows)
            await session.commit()
            with caplog.at_level(logging.INFO, logger="app.db.vectors"):
                assert await vectors.has_pgvector()
                await session.commit()
            assert set(await session.scalars(text(types))) == {"halfvec"}
            assert len(caplog.records) == 2  # message_vectors and chunk_vectors
            caplog.clear()
            with caplog.at_level(logging.INFO, logger="app.db.vectors"):
                assert await vectors.has_pgvector()  # the next start
                await session.commit()
            assert caplog.records == []
            stored = await session.scalar(
                select(MessageVector.vector).where(MessageVector.message_id == ids[2])
            )
            assert stored is not None
            assert np.allclose(stored, directions[2], atol=1e-3)  # half precision
            await vectors.store(MODEL, [(ids[0], conversation.id, directions[0])])  # once
            nearest = await index(pool, "postgresql").nearest(
                session, conversation.id, unit(0, 0.5, 0.9), before_id=ids[2] + 1, limit=3
            )
            assert [row[0] for row in nearest] == [ids[2], ids[1], ids[0]]
    finally:
        await engine.dispose()


@pytest.mark.parametrize("honoured", [True, False], ids=["base64", "floats-anyway"])
async def test_vectors_come_as_base64_and_from_a_server_that_answers_floats_anyway(
    llm: FakeOpenAI, honoured: bool
) -> None:
    """The client asks for base64 (a quarter of the floats' JSON to read); Ollama answers
    floats whatever is asked, and they are read the same."""
    llm.embedding_base64 = honoured
    client = AsyncOpenAI(api_key="test-key", base_url=llm.base_url, max_retries=0)
    embedder = Embedder(client, MODEL, timeout=5)
    try:
        vectors = await embedder.embed(["cats purr", "trains run"])
    finally:
        await client.close()
    assert llm.embedding_formats == ["base64"]
    for vector, expected in zip(
        vectors, [llm.embedding_of("cats purr"), llm.embedding_of("trains run")], strict=True
    ):
        assert np.allclose(vector, unit(*expected), atol=1e-6)
        assert abs(np.linalg.norm(vector) - 1) < 1e-6


async def test_a_size_asked_of_the_model_is_sent_and_stored_apart(
    pool: async_sessionmaker[AsyncSession], database_url: str, llm: FakeOpenAI
) -> None:
    """EMBEDDINGS_DIMENSIONS: sent as `dimensions` (OpenAI's shorter vectors), and the
    vectors kept under the model and the size, so that a change of size embeds the turns
    anew instead of comparing vectors of two sizes."""
    memory = memory_service()
    await conversation_with(pool, memory, ["cats purr", "trains run"])
    dialect = await ready(pool)
    client = AsyncOpenAI(api_key="test-key", base_url=llm.base_url, max_retries=0)
    try:
        full = Embeddings(pool, Embedder(client, MODEL, timeout=5), dialect=dialect)
        assert await full.catch_up() == 2
        short = Embeddings(pool, Embedder(client, MODEL, timeout=5, dimensions=16), dialect=dialect)
        assert short.model == f"{MODEL}@16"
        assert await short.catch_up() == 2  # the same turns, anew
        assert await short.catch_up() == 0
        assert llm.embedding_sizes == [None, 16]
        async with pool() as session:
            sizes = {
                model: len(vector)
                for model, vector in (
                    await session.execute(select(MessageVector.model, MessageVector.vector))
                ).all()
            }
        assert sizes == {MODEL: llm.embedding_dims, f"{MODEL}@16": 16}
    finally:
        await client.close()
