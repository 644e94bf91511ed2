"""Several processes on one PostgreSQL and one Redis: one user's messages are answered one at
a time, an update delivered to two of them is answered once, a stop reaches the answer on
the other one, and one conversation is summarised by one of them at a time.

Two `create_dispatcher` instances stand for two replicas; updates are fed to them directly.
Redis db 14 (another suite flushes 15) and a key prefix of the test's own, removed after it.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import os
import re
import sys
import time
import uuid
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest
from aiogram import Bot, Dispatcher
from aiogram.types import Update
from redis.asyncio import Redis
from sqlalchemy import select

from app.config import RedisSettings, Settings
from app.db.messages import MessageRepository
from app.db.models import Conversation, Message
from app.factory import create_bot, create_dispatcher, resources_of
from app.middlewares.serial import PerUserSerialMiddleware
from app.middlewares.shared_lock import SharedUserLocks
from app.services.generations import Generations
from app.services.shared_stops import SharedStops
from app.services.summary_locks import SharedSummaryLocks
from tests.fakes import FakeOpenAI, FakeTelegram
from tests.harness import ALLOWED, buttons, skip_or_fail


@pytest.fixture
async def redis_url() -> AsyncIterator[str]:
    base = os.environ.get("TEST_REDIS_URL")
    if not base:
        skip_or_fail("Redis tests need TEST_REDIS_URL (e.g. redis://127.0.0.1:6379/15)")
    url = re.sub(r"/\d+$", "", str(base)) + "/14"
    client = Redis.from_url(url)
    try:
        await client.ping()
    except OSError as exc:
        skip_or_fail(f"Redis at TEST_REDIS_URL is unreachable: {exc}")
    finally:
        await client.aclose()
    yield url


@pytest.fixture
async def redis(redis_url: str) -> AsyncIterator[Redis]:
    client = Redis.from_url(redis_url)
    yield client
    await client.aclose()


@pytest.fixture
async def prefix(redis: Redis) -> AsyncIterator[str]:
    """A key prefix of this test's own; its keys are removed afterwards."""
    value = f"tba-test-{uuid.uuid4().hex[:10]}"
    yield value
    keys = [key async for key in redis.scan_iter(match=f"{value}:*")]
    if keys:
        await redis.delete(*keys)


def locks(redis: Redis, prefix: str, **options: Any) -> SharedUserLocks:
    return SharedUserLocks(redis, prefix=prefix, **options)


# --- the lock wrapper ----------------------------------------------------------------------


async def test_a_second_holder_waits_until_the_first_releases(redis: Redis, prefix: str) -> None:
    first, second = locks(redis, prefix), locks(redis, prefix)
    order: list[str] = []

    async def later() -> None:
        async with second.hold(1, 7) as had:
            assert had
            order.append("second")

    async with first.hold(1, 7) as had:
        assert had
        waiter = asyncio.create_task(later())
        await asyncio.sleep(0.3)
        assert order == []
        order.append("first done")
    await asyncio.wait_for(waiter, 5)
    assert order == ["first done", "second"]
    assert await redis.exists(first.key(1, 7)) == 0


async def test_the_holder_renews_its_lock_past_the_ttl(redis: Redis, prefix: str) -> None:
    holder = locks(redis, prefix, ttl=0.5, renew_every=0.15)
    other = locks(redis, prefix, max_wait=0.0)
    async with holder.hold(1, 7):
        await asyncio.sleep(1.5)  # three TTLs
        assert not await other.lock(1, 7).acquire(blocking=False)
    assert await redis.exists(holder.key(1, 7)) == 0


async def test_a_dead_holders_lock_is_taken_over_after_its_ttl(redis: Redis, prefix: str) -> None:
    shared = locks(redis, prefix)
    # A holder that dies: it takes the lock with a short TTL and never releases it.
    assert await redis.lock(shared.key(1, 7), timeout=0.8).acquire(blocking=False)
    started = time.monotonic()
    async with shared.hold(1, 7) as had:
        assert had
        waited = time.monotonic() - started
    assert 0.5 < waited < 3.0


async def test_a_wait_past_the_bound_goes_on_with_a_warning(
    redis: Redis, prefix: str, caplog: pytest.LogCaptureFixture
) -> None:
    shared = locks(redis, prefix, max_wait=0.3)
    assert await redis.lock(shared.key(1, 7), timeout=30).acquire(blocking=False)
    with caplog.at_level(logging.WARNING, logger="app.middlewares.shared_lock"):
        async with shared.hold(1, 7) as had:
            assert not had
    assert "answering anyway" in caplog.text
    assert await redis.exists(shared.key(1, 7)) == 1  # not released: it was never ours


async def test_an_unreachable_redis_lets_the_message_through(
    caplog: pytest.LogCaptureFixture,
) -> None:
    client = Redis.from_url("redis://127.0.0.1:1/0")
    shared = SharedUserLocks(client, max_wait=0.2)
    with caplog.at_level(logging.WARNING, logger="app.middlewares.shared_lock"):
        async with shared.hold(1, 7) as had:
            assert not had
    assert "cannot be taken" in caplog.text
    await client.aclose()


async def test_a_summary_lock_held_elsewhere_is_skipped_and_an_unreachable_redis_is_not(
    redis: Redis, prefix: str, caplog: pytest.LogCaptureFixture
) -> None:
    shared = SharedSummaryLocks(redis, bot_id=1, prefix=prefix)
    other = SharedSummaryLocks(redis, bot_id=1, prefix=prefix)
    async with shared.hold(9) as first, other.hold(9) as second:
        assert (first, second) == (True, False)
    assert await redis.exists(shared.key(9)) == 0
    client = Redis.from_url("redis://127.0.0.1:1/0")
    with caplog.at_level(logging.WARNING, logger="app.services.summary_locks"):
        async with SharedSummaryLocks(client, bot_id=1).hold(9) as had:
            assert had
    assert "summarising anyway" in caplog.text
    await client.aclose()


async def test_with_redis_unreachable_a_stop_starts_and_says_nothing_was_stopped(
    caplog: pytest.LogCaptureFixture,
) -> None:
    client = Redis.from_url("redis://127.0.0.1:1/0")
    stops = SharedStops(client, Generations())
    with caplog.at_level(logging.WARNING, logger="app.services.shared_stops"):
        await stops.start(1)  # start-up goes on; the listener retries in the background
        assert not await stops.stop(5)
    assert "not heard" in caplog.text and "could not be passed on" in caplog.text
    await stops.close()
    await client.aclose()


# --- two dispatchers on one PostgreSQL and one Redis ---------------------------------------


class Replica:
    """One `create_dispatcher` with its own bot session, as one process would have."""

    def __init__(self, settings: Settings, prefix: str | None) -> None:
        self.bot: Bot = create_bot(settings)
        self.dp: Dispatcher = create_dispatcher(settings, stream_interval=0.05)
        if prefix is not None:
            serial = next(
                m for m in self.dp.update.outer_middleware if isinstance(m, PerUserSerialMiddleware)
            )
            assert serial.shared is not None
            serial.shared.prefix = prefix
            # Before start-up, which subscribes to the stop channel under this prefix.
            resources = resources_of(self.dp)
            assert resources.chat.shared_stops is not None
            resources.chat.shared_stops.prefix = prefix
            assert isinstance(resources.summarizer.locks, SharedSummaryLocks)
            resources.summarizer.locks.prefix = prefix

    async def feed(self, raw: dict[str, Any]) -> None:
        update = Update.model_validate(raw, context={"bot": self.bot})
        await self.dp.feed_update(self.bot, update)


@pytest.fixture
async def replicas(
    make_settings: Callable[..., Settings], postgres_url: str, redis_url: str, prefix: str
) -> AsyncIterator[Callable[..., Any]]:
    started: list[Replica] = []

    async def start(*, with_redis: bool = True) -> tuple[Replica, Replica]:
        settings = make_settings(database_url=postgres_url)
        if with_redis:
            settings = Settings(
                **{
                    **{f: getattr(settings, f) for f in settings.__dataclass_fields__},
                    "redis": RedisSettings(url=redis_url, _env_file=None),
                }
            )
        pair = []
        for _ in range(2):
            replica = Replica(settings, prefix if with_redis else None)
            await replica.dp.emit_startup(bot=replica.bot)
            started.append(replica)
            pair.append(replica)
        return pair[0], pair[1]

    yield start
    for replica in started:
        await replica.dp.emit_shutdown(bot=replica.bot)
        await replica.bot.session.close()


def answers(telegram: FakeTelegram, user_id: int) -> list[str]:
    return [m.text or "" for m in telegram.sent_messages(user_id)]


async def test_one_users_messages_to_two_replicas_are_answered_one_at_a_time_in_order(
    replicas: Callable[..., Any], telegram: FakeTelegram, llm: FakeOpenAI
) -> None:
    llm.reply = lambda body: f"answer to {body['messages'][-1]['content']}"
    llm.token_interval = 0.05  # an answer streams for about half a second
    first, second = await replicas()
    raws = [telegram.push_message(ALLOWED, f"message {n}") for n in range(4)]
    tasks = []
    for n, raw in enumerate(raws):
        tasks.append(asyncio.create_task((first if n % 2 == 0 else second).feed(raw)))
        await asyncio.sleep(0.15)  # each arrives while the one before it is answered
    await asyncio.wait_for(asyncio.gather(*tasks), 30)

    records = sorted(llm.records, key=lambda r: r.at)
    assert len(records) == 4
    for before, after in itertools.pairwise(records):
        assert before.finished_at is not None
        assert after.at >= before.finished_at  # never two answers at once
    # Each request carries every turn before it, and no other: the history never interleaves.
    for n, record in enumerate(records):
        turns = [m["content"] for m in record.body["messages"] if m["role"] != "system"]
        assert len(turns) == 2 * n + 1
        for earlier in range(n):
            assert turns[2 * earlier + 1] == f"answer to {turns[2 * earlier]}"
    assert sorted(answers(telegram, ALLOWED)) == sorted(f"answer to message {n}" for n in range(4))


async def test_two_messages_to_two_replicas_are_answered_in_arrival_order(
    replicas: Callable[..., Any], telegram: FakeTelegram, llm: FakeOpenAI
) -> None:
    llm.reply = lambda body: f"answer to {body['messages'][-1]['content']}"
    llm.token_interval = 0.05
    first, second = await replicas()
    one = asyncio.create_task(first.feed(telegram.push_message(ALLOWED, "first")))
    await asyncio.sleep(0.15)
    two = asyncio.create_task(second.feed(telegram.push_message(ALLOWED, "second")))
    await asyncio.wait_for(asyncio.gather(one, two), 30)
    assert answers(telegram, ALLOWED) == ["answer to first", "answer to second"]
    later = max(llm.records, key=lambda r: r.at).body["messages"]
    assert [m["content"] for m in later[-3:]] == ["first", "answer to first", "second"]


@pytest.mark.parametrize("with_redis", [True, False], ids=["redis-lock", "database-only"])
async def test_an_update_delivered_to_both_replicas_is_answered_once(
    replicas: Callable[..., Any], telegram: FakeTelegram, llm: FakeOpenAI, with_redis: bool
) -> None:
    llm.token_interval = 0.02
    first, second = await replicas(with_redis=with_redis)
    raw = telegram.push_message(ALLOWED, "only once")
    await asyncio.wait_for(asyncio.gather(first.feed(raw), second.feed(raw)), 30)
    assert len(llm.records) == 1
    assert len(answers(telegram, ALLOWED)) == 1
    # Fed again later, to either, it is still known.
    await second.feed(raw)
    await first.feed(raw)
    assert len(llm.records) == 1


async def test_an_update_recorded_by_another_replica_is_not_answered_past_the_watermark(
    replicas: Callable[..., Any], telegram: FakeTelegram, llm: FakeOpenAI
) -> None:
    first, second = await replicas(with_redis=False)
    raw = telegram.push_message(ALLOWED, "newer than both watermarks")
    await first.feed(raw)
    await second.feed(raw)
    assert len(llm.records) == 1
    assert len(answers(telegram, ALLOWED)) == 1  # and no error message either


async def test_a_lock_whose_holder_died_is_taken_over_after_it_expires(
    replicas: Callable[..., Any], telegram: FakeTelegram, llm: FakeOpenAI, redis: Redis, prefix: str
) -> None:
    first, _ = await replicas()
    key = SharedUserLocks(redis, prefix=prefix).key(first.bot.id, ALLOWED)
    # The holder was SIGKILLed mid-answer: its lock is there, with a TTL, never released.
    assert await redis.lock(key, timeout=1.0).acquire(blocking=False)
    started = time.monotonic()
    await asyncio.wait_for(first.feed(telegram.push_message(ALLOWED, "anyone there?")), 30)
    assert time.monotonic() - started > 0.7
    assert len(answers(telegram, ALLOWED)) == 1
    assert await redis.exists(key) == 0


# --- stops and summaries across replicas ----------------------------------------------------

LONG_REPLY = " ".join(f"word{i}" for i in range(200))
FILLER = "We talked about the weather and the plans for the weekend again. " * 3


async def stored_turns(replica: Replica) -> list[tuple[str, str]]:
    async with resources_of(replica.dp).pool() as session:
        rows = await session.execute(
            select(Message.role, Message.content)
            .where(Message.user_id == ALLOWED)
            .order_by(Message.id)
        )
        return [(role.value, content) for role, content in rows]


async def test_slash_stop_sent_to_another_replica_ends_the_answer_and_keeps_the_part(
    replicas: Callable[..., Any], telegram: FakeTelegram, llm: FakeOpenAI
) -> None:
    llm.reply = LONG_REPLY
    llm.token_interval = 0.05
    first, second = await replicas()
    answering = asyncio.create_task(first.feed(telegram.push_message(ALLOWED, "a long story")))
    await llm.wait_for(lambda: llm.records and llm.records[-1].chunks_sent > 6, timeout=10)
    record = llm.records[-1]
    await asyncio.wait_for(second.feed(telegram.push_message(ALLOWED, "/stop")), 5)
    await llm.wait_for(lambda: record.client_closed_at is not None, timeout=3)
    await asyncio.wait_for(answering, 10)
    assert record.status == 0  # never finished: the fake saw the connection closed
    texts = answers(telegram, ALLOWED)
    assert not [t for t in texts if "No answer is being written" in t]
    assert "Stopped" in texts[-1]
    (_, question), (role, partial) = await stored_turns(second)
    assert (question, role) == ("a long story", "assistant")
    assert partial.startswith("word0") and "word199" not in partial


async def test_the_stop_button_pressed_on_another_replica_ends_the_answer(
    replicas: Callable[..., Any], telegram: FakeTelegram, llm: FakeOpenAI
) -> None:
    llm.reply = LONG_REPLY
    llm.token_interval = 0.05
    first, second = await replicas()
    answering = asyncio.create_task(first.feed(telegram.push_message(ALLOWED, "a long story")))
    await llm.wait_for(lambda: llm.records and llm.records[-1].chunks_sent > 6, timeout=10)
    record = llm.records[-1]
    draft_id = telegram.drafts(ALLOWED)[-1].draft_id
    await asyncio.wait_for(second.feed(telegram.push_stop(ALLOWED, draft_id)), 5)
    await llm.wait_for(lambda: record.client_closed_at is not None, timeout=3)
    await asyncio.wait_for(answering, 10)
    assert "Stopped" in answers(telegram, ALLOWED)[-1]


async def test_slash_stop_with_nothing_running_on_any_replica_says_so_at_once(
    replicas: Callable[..., Any], telegram: FakeTelegram
) -> None:
    _, second = await replicas()
    started = time.monotonic()
    await second.feed(telegram.push_message(ALLOWED, "/stop"))
    # Both replicas answered "not here", so it does not wait out the reply window.
    assert time.monotonic() - started < 0.4
    assert "No answer is being written" in answers(telegram, ALLOWED)[-1]


async def test_two_replicas_summarising_one_conversation_at_once_call_the_model_once(
    replicas: Callable[..., Any], telegram: FakeTelegram, llm: FakeOpenAI
) -> None:
    first, second = await replicas()
    await first.feed(telegram.push_message(ALLOWED, "hello"))  # the user and a conversation
    memory = resources_of(first.dp).memory
    async with resources_of(first.dp).pool() as session, session.begin():
        persona_id = await session.scalar(
            select(Conversation.persona_id).where(Conversation.user_id == ALLOWED)
        )
        assert persona_id is not None
        conversation = await memory.conversation(session, ALLOWED, persona_id)
        for n in range(30):
            turn = memory.user_turn(FILLER) if n % 2 == 0 else memory.answer_turn(FILLER)
            last = await memory.remember(session, conversation, turn)
    llm.reply = "The user and the assistant talked about the weather."
    llm.latency = 0.5  # both runs are under way at once
    calls_before = len(llm.records)
    summarizers = [resources_of(r.dp).summarizer for r in (first, second)]
    for summarizer in summarizers:
        assert summarizer.schedule(conversation.id, 10**9, 200, user_id=ALLOWED)
    for summarizer in summarizers:
        assert await summarizer.drain(10.0) == 0
    assert len(llm.records) - calls_before == 1
    async with resources_of(second.dp).pool() as session:
        summary, _, until_id = await MessageRepository(session).summary_of(conversation.id) or (
            None,
            0,
            None,
        )
    assert summary is not None and "talked about the weather" in summary
    assert until_id == last.id


async def test_settings_and_rights_changed_elsewhere_are_seen_by_the_next_message(
    replicas: Callable[..., Any],
    telegram: FakeTelegram,
    llm: FakeOpenAI,
    postgres_url: str,
    repo_root: Path,
) -> None:
    """Whatever a replica may cache, a change made on another replica (a setting chosen in
    /settings) or by another process (the command line blocking the user) is what the next
    message meets on this one."""
    first, second = await replicas()

    def button(label: str) -> tuple[str, int]:
        [(data, message_id)] = [
            (data, message.message_id)
            for message in telegram.sent_messages(ALLOWED)[-1:]
            for text, data in buttons(message)
            if label in text
        ]
        return data, message_id

    await first.feed(telegram.push_message(ALLOWED, "hello"))  # warms `first`'s caches
    assert llm.requests[-1].get("temperature") != 0.3
    await second.feed(telegram.push_message(ALLOWED, "/settings"))
    await second.feed(telegram.push_callback(ALLOWED, *button("Temperature")))
    await second.feed(telegram.push_callback(ALLOWED, *button("0.3")))
    await first.feed(telegram.push_message(ALLOWED, "hello again"))
    assert llm.requests[-1]["temperature"] == 0.3
    assert len(llm.requests) == 2

    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("TELEGRAM_", "OPENAI_", "DATABASE_", "REDIS_"))
    } | {"DATABASE_URL": postgres_url}
    blocking = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "app",
        "--env-file",
        "",
        "users",
        "block",
        str(ALLOWED),
        env=env,
        cwd=repo_root,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(blocking.communicate(), 60)
    assert blocking.returncode == 0, (out + err).decode()
    before = len(telegram.sent_messages(ALLOWED))
    await first.feed(telegram.push_message(ALLOWED, "still there?"))
    assert len(llm.requests) == 2  # blocked: nothing reaches the model
    [refusal] = telegram.sent_messages(ALLOWED)[before:]
    assert "Echo" not in (refusal.text or "")
