"""End to end: recall by meaning. Stored turns are embedded in the background (never before
an answer); when older turns no longer fit, the new message's embedding finds the turns
nearest in meaning, fused with those found by words; a failing or slow embedding server
costs nothing but the meaning (recall goes by words), on SQLite and on PostgreSQL."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.config import MemorySettings, Settings
from app.db.engine import create_engine, create_sessionmaker
from app.db.models import ChunkVector, DocumentChunk, MessageVector
from tests.fakes import FakeOpenAI, FakeTelegram
from tests.harness import ALLOWED, RunningBot, StartBot, UserChat

FACT = "I park my bicycle in the blue shed behind the bakery."
QUESTION = "Where do I keep my two-wheeler?"
# The fake's vectors put these words where the fact's are: a paraphrase, no word shared
# that full-text search would find.
SYNONYMS = {"two": "bicycle", "wheeler": "bicycle", "keep": "park"}
FILLER = "and then we talked about weather, trains and long weekend plans " * 4


def settings(make_settings: Callable[..., Settings], **embeddings: Any) -> Settings:
    return make_settings(
        context_window=1_200,
        max_answer_tokens=150,
        safety_margin_tokens=0,
        embedding_model="test-embedding",
        embeddings=embeddings,
        memory=MemorySettings(summary_share=0, titles=False, profile=False, _env_file=None),
    )


async def vectors(db: async_sessionmaker[AsyncSession]) -> int:
    async with db() as session:
        return int(await session.scalar(select(func.count()).select_from(MessageVector)) or 0)


async def embedded(db: async_sessionmaker[AsyncSession], count: int, timeout: float = 10) -> None:
    deadline = time.monotonic() + timeout
    while await vectors(db) < count:
        assert time.monotonic() < deadline, f"{await vectors(db)} of {count} turns embedded"
        await asyncio.sleep(0.05)


async def plant(user: UserChat, bot: RunningBot, fillers: int = 16) -> None:
    await user.send(FACT)
    for i in range(fillers):
        await user.send(f"note {i}: {FILLER}")


def request_contents(llm: FakeOpenAI) -> list[str]:
    return [str(m["content"]) for m in llm.requests[-1]["messages"]]


async def test_turns_are_embedded_after_they_are_stored_never_on_the_way_to_an_answer(
    start_bot: StartBot,
    make_settings: Callable[..., Settings],
    telegram: FakeTelegram,
    llm: FakeOpenAI,
    db: async_sessionmaker[AsyncSession],
) -> None:
    bot = await start_bot(settings(make_settings))
    user = UserChat(bot, telegram, ALLOWED)
    assert (await user.send("hello there")).text == "Echo: hello there"
    await embedded(db, 2)
    # Nothing was left out of the request: no embedding before the answer, and the question
    # and its answer embedded together, afterwards.
    assert llm.embedding_calls == [["hello there", "Echo: hello there"]]


async def test_a_fact_told_in_other_words_is_recalled_by_meaning(
    start_bot: StartBot,
    make_settings: Callable[..., Settings],
    telegram: FakeTelegram,
    llm: FakeOpenAI,
    db: async_sessionmaker[AsyncSession],
) -> None:
    llm.synonyms = SYNONYMS
    llm.reply = "Noted."
    bot = await start_bot(settings(make_settings))
    user = UserChat(bot, telegram, ALLOWED)
    await plant(user, bot)
    await embedded(db, 34)
    calls = len(llm.embedding_calls)
    await user.send(QUESTION)
    contents = request_contents(llm)
    assert FACT in contents
    # Recalled, not recent: the turns right after it are not in the request.
    assert not any(c.startswith("note 0:") for c in contents)
    # The question was embedded on the way (older turns were left out), then stored with
    # that vector: the server was asked once for it.
    assert llm.embedding_calls[calls] == [QUESTION]
    await embedded(db, 36)
    assert all(QUESTION not in call for call in llm.embedding_calls[calls + 1 :])


async def test_without_embeddings_the_paraphrase_is_not_found_by_words(
    start_bot: StartBot,
    make_settings: Callable[..., Settings],
    telegram: FakeTelegram,
    llm: FakeOpenAI,
) -> None:
    """The baseline the test above improves on: the same conversation, recall by words."""
    llm.reply = "Noted."
    bot = await start_bot(_words_only(make_settings))
    user = UserChat(bot, telegram, ALLOWED)
    await plant(user, bot)
    await user.send(QUESTION)
    assert FACT not in request_contents(llm)
    assert llm.embedding_calls == []


def _words_only(make_settings: Callable[..., Settings]) -> Settings:
    return make_settings(
        context_window=1_200,
        max_answer_tokens=150,
        safety_margin_tokens=0,
        memory=MemorySettings(summary_share=0, titles=False, profile=False, _env_file=None),
    )


async def test_a_failing_or_slow_embedding_server_leaves_recall_to_words(
    start_bot: StartBot,
    make_settings: Callable[..., Settings],
    telegram: FakeTelegram,
    llm: FakeOpenAI,
    db: async_sessionmaker[AsyncSession],
) -> None:
    llm.reply = "Noted."
    llm.embedding_failures = 1_000
    bot = await start_bot(settings(make_settings, timeout=0.3))
    user = UserChat(bot, telegram, ALLOWED)
    await user.send("My dentist is Dr Quillfeather on Bramble Street.")
    for i in range(16):
        await user.send(f"note {i}: {FILLER}")
    assert await vectors(db) == 0
    await user.send("Which street was my dentist on?")
    assert "My dentist is Dr Quillfeather on Bramble Street." in request_contents(llm)
    # Slow: the answer waits EMBEDDINGS_TIMEOUT (0.3 s) for the vector, then goes by words.
    llm.embedding_failures = 0
    llm.embedding_delay = 3.0
    started = time.monotonic()
    await user.send("And who is my dentist, by name?")
    assert time.monotonic() - started < 2.5
    assert "My dentist is Dr Quillfeather on Bramble Street." in request_contents(llm)
    # Back to normal: the backlog is embedded in the background.
    llm.embedding_delay = 0.0
    await embedded(db, 38, timeout=20)


async def test_recall_by_meaning_on_postgresql_with_pgvector(
    start_bot: StartBot,
    make_settings: Callable[..., Settings],
    telegram: FakeTelegram,
    llm: FakeOpenAI,
    postgres_url: str,
) -> None:
    llm.synonyms = SYNONYMS
    llm.reply = "Noted."
    base = settings(make_settings)
    bot = await start_bot(
        make_settings(
            database_url=postgres_url,
            context_window=1_200,
            max_answer_tokens=150,
            safety_margin_tokens=0,
            embedding_model="test-embedding",
            memory=base.memory,
        )
    )
    engine = create_engine(postgres_url)
    db = create_sessionmaker(engine)
    try:
        user = UserChat(bot, telegram, ALLOWED)
        await plant(user, bot)
        await embedded(db, 34)
        await user.send(QUESTION)
        assert FACT in request_contents(llm)
    finally:
        await engine.dispose()


async def test_a_long_documents_part_is_found_by_meaning(
    start_bot: StartBot,
    make_settings: Callable[..., Settings],
    telegram: FakeTelegram,
    llm: FakeOpenAI,
    db: async_sessionmaker[AsyncSession],
) -> None:
    llm.context_window = 4000
    llm.synonyms = {"seasoning": "saffron", "soup": "broth"}
    bot = await start_bot(
        make_settings(context_window=4000, max_answer_tokens=300, embedding_model="test-embed")
    )
    sections = [
        f"Chapter {n}.\n\n" + " ".join([f"This chapter is about the topic number {n}."] * 40)
        for n in range(1, 41)
    ]
    sections[17] += "\n\nGrandmother's broth always got a pinch of saffron."
    telegram.push_document(ALLOWED, "\n\n".join(sections).encode(), "book.md", caption="Read")
    await bot.idle()
    async with db() as session:
        parts = int(await session.scalar(select(func.count()).select_from(DocumentChunk)) or 0)
    deadline = time.monotonic() + 10
    while True:  # its parts are embedded in the background, as turns are
        async with db() as session:
            done = await session.scalar(select(func.count()).select_from(ChunkVector))
        if done == parts:
            break
        assert time.monotonic() < deadline
        await asyncio.sleep(0.05)
    telegram.push_message(ALLOWED, "What seasoning goes into the soup?")
    await bot.idle()
    excerpts = llm.requests[-1]["messages"][-2]
    assert excerpts["role"] == "system" and "saffron" in excerpts["content"]


async def test_recall_reaches_other_conversations_only_when_the_user_opts_in(
    start_bot: StartBot,
    make_settings: Callable[..., Settings],
    telegram: FakeTelegram,
    llm: FakeOpenAI,
    db: async_sessionmaker[AsyncSession],
) -> None:
    llm.synonyms = SYNONYMS
    llm.reply = "Noted."
    bot = await start_bot(settings(make_settings))
    user = UserChat(bot, telegram, ALLOWED)
    dentist = "My dentist is Dr Quillfeather on Bramble Street."
    await user.send(dentist)
    await user.send(FACT)
    await user.send("/new")
    for i in range(16):
        await user.send(f"note {i}: {FILLER}")
    await embedded(db, 36)
    await user.send("Which street is my dentist on?")
    assert dentist not in request_contents(llm)  # /new promised a fresh start
    menu = await user.send("/settings")
    assert "Recall from: <b>This conversation</b>" in (menu.text or "")
    await user.press("🔎 Recall", menu)
    await user.press("All conversations with the persona")
    assert "Recall from: <b>All conversations with the persona</b>" in (user.last.text or "")
    await user.send("Which street is my dentist on?")
    contents = request_contents(llm)
    assert dentist in contents  # by words, from the conversation before /new
    await embedded(db, 40)
    await user.send(QUESTION)
    assert FACT in request_contents(llm)  # by meaning, from there too
    # Back to this conversation only.
    await user.press("🔎 Recall", await user.send("/settings"))
    await user.press("This conversation")
    await user.send("Which street is my dentist on?")
    assert dentist not in request_contents(llm)
