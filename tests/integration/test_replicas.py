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


# --- the per-user queue ----------------------------------------------------------------------


async def dead_process(redis: Redis, shared: SharedUserLocks, ttl_ms: int | None) -> str:
    """A process that took a turn and died: its update is the running head of user 7's
    queue, and its liveness key expires in `ttl_ms` (None: already gone)."""
    token = uuid.uuid4().hex
    if ttl_ms is not None:
        await redis.set(shared.alive_key(token), 1, px=ttl_ms)
    await redis.zadd(shared.key(1, 7), {f"1:{token}": -1})
    return token


async def test_a_second_update_waits_until_the_first_is_done(redis: Redis, prefix: str) -> None:
    first, second = locks(redis, prefix), locks(redis, prefix)
    order: list[str] = []

    async def later() -> None:
        async with second.hold(1, 7, 2) as had:
            assert had
            order.append("second")

    async with first.hold(1, 7, 1) as had:
        assert had
        assert 0 < await redis.pttl(first.key(1, 7)) <= 30_000  # never kept forever
        waiter = asyncio.create_task(later())
        await asyncio.sleep(0.3)
        assert order == []
        order.append("first done")
    await asyncio.wait_for(waiter, 5)
    assert order == ["first done", "second"]
    assert await redis.exists(first.key(1, 7)) == 0  # an empty queue is gone
    await first.close()
    await second.close()


async def test_updates_queued_across_two_processes_are_served_by_update_id(
    redis: Redis, prefix: str
) -> None:
    """Updates 1..10 of one user arrive at two processes in a mixed order while an earlier
    one is answered: each process gets some out of order, and the two interleave."""
    one, two = locks(redis, prefix), locks(redis, prefix)
    served: list[int] = []
    running = 0

    async def answer(shared: SharedUserLocks, update_id: int) -> None:
        nonlocal running
        async with shared.hold(1, 7, update_id) as had:
            assert had
            running += 1
            assert running == 1  # never two at once
            served.append(update_id)
            await asyncio.sleep(0.02)
            running -= 1

    arrival = [6, 2, 9, 1, 10, 4, 3, 8, 5, 7]
    async with one.hold(1, 7, 0):  # answering an earlier one meanwhile
        tasks = []
        for n, update_id in enumerate(arrival):
            tasks.append(asyncio.create_task(answer(one if n % 2 else two, update_id)))
            await asyncio.sleep(0.01)
        await asyncio.sleep(0.2)
        assert served == []
    await asyncio.wait_for(asyncio.gather(*tasks), 10)
    assert served == list(range(1, 11))
    assert await redis.exists(one.key(1, 7)) == 0
    await one.close()
    await two.close()


async def test_an_earlier_update_arriving_late_waits_for_the_one_being_answered(
    redis: Redis, prefix: str
) -> None:
    one, two = locks(redis, prefix), locks(redis, prefix)
    order: list[str] = []

    async def late() -> None:
        async with two.hold(1, 7, 3):
            order.append("3")

    async with one.hold(1, 7, 5):
        waiter = asyncio.create_task(late())
        await asyncio.sleep(0.3)
        order.append("5 done")
    await asyncio.wait_for(waiter, 5)
    assert order == ["5 done", "3"]
    await one.close()
    await two.close()


async def test_the_holder_keeps_its_turn_past_the_ttl(redis: Redis, prefix: str) -> None:
    holder = locks(redis, prefix, ttl=0.5, renew_every=0.15)
    other = locks(redis, prefix, ttl=0.5, renew_every=0.15)
    entered = asyncio.Event()

    async def wait() -> None:
        async with other.hold(1, 7, 2):
            entered.set()

    async with holder.hold(1, 7, 1):
        waiter = asyncio.create_task(wait())
        await asyncio.sleep(1.5)  # three TTLs
        assert not entered.is_set()
        assert await redis.exists(holder.alive_key()) == 1
    await asyncio.wait_for(waiter, 5)
    assert await redis.exists(holder.key(1, 7)) == 0
    await holder.close()
    await other.close()


async def test_a_dead_processs_head_is_skipped_once_its_liveness_key_expires(
    redis: Redis, prefix: str
) -> None:
    shared = locks(redis, prefix)
    await dead_process(redis, shared, ttl_ms=800)
    started = time.monotonic()
    async with shared.hold(1, 7, 2) as had:
        assert had
        waited = time.monotonic() - started
    assert 0.5 < waited < 3.0
    assert await redis.exists(shared.key(1, 7)) == 0
    await shared.close()


async def test_a_head_whose_process_is_gone_is_skipped_at_once(redis: Redis, prefix: str) -> None:
    shared = locks(redis, prefix)
    await dead_process(redis, shared, ttl_ms=None)
    started = time.monotonic()
    async with shared.hold(1, 7, 2) as had:
        assert had
    assert time.monotonic() - started < 0.5
    await shared.close()


async def test_a_wait_past_the_bound_goes_on_with_a_warning(
    redis: Redis, prefix: str, caplog: pytest.LogCaptureFixture
) -> None:
    shared = locks(redis, prefix, max_wait=0.3)
    token = await dead_process(redis, shared, ttl_ms=30_000)  # alive, but never done
    with caplog.at_level(logging.WARNING, logger="app.middlewares.shared_lock"):
        async with shared.hold(1, 7, 2) as had:
            assert not had
    assert "answering anyway" in caplog.text
    # Its own update left the queue; the other process's is still the head.
    assert await redis.zrange(shared.key(1, 7), 0, -1) == [f"1:{token}".encode()]
    await shared.close()


async def test_a_burst_bigger_than_the_connection_pool_keeps_its_order(
    redis_url: str, prefix: str, caplog: pytest.LogCaptureFixture
) -> None:
    """Forty updates of one user at once on a client of four connections: those that find
    every connection busy ask again, rather than go around the queue."""
    client = Redis.from_url(redis_url, max_connections=4)
    shared = SharedUserLocks(client, prefix=prefix)
    served: list[int] = []

    async def answer(update_id: int) -> None:
        async with shared.hold(1, 7, update_id) as had:
            assert had
            served.append(update_id)

    with caplog.at_level(logging.WARNING, logger="app.middlewares.shared_lock"):
        async with shared.hold(1, 7, 0):
            tasks = [asyncio.create_task(answer(n)) for n in range(40, 0, -1)]
            await asyncio.sleep(0.5)
        await asyncio.wait_for(asyncio.gather(*tasks), 10)
    assert served == list(range(1, 41))
    assert caplog.text == ""
    await shared.close()
    await client.aclose()


async def test_an_unreachable_redis_lets_the_messages_through_one_at_a_time(
    caplog: pytest.LogCaptureFixture,
) -> None:
    client = Redis.from_url("redis://127.0.0.1:1/0")
    shared = SharedUserLocks(client, max_wait=5)
    served: list[int] = []

    async def answer(update_id: int) -> None:
        async with shared.hold(1, 7, update_id) as had:
            assert not had
            served.append(update_id)
            await asyncio.sleep(0.05)
            served.append(-update_id)

    with caplog.at_level(logging.WARNING, logger="app.middlewares.shared_lock"):
        await asyncio.wait_for(asyncio.gather(answer(2), answer(1), answer(3)), 5)
    assert "cannot be used" in caplog.text
    # Still one at a time in this process, by update id.
    assert served == [1, -1, 2, -2, 3, -3]
    await shared.close()
    await client.aclose()


async def test_a_redis_that_never_answers_lets_the_message_through(
    caplog: pytest.LogCaptureFixture,
) -> None:
    async def silent(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.read(-1)  # takes every command, answers none
        writer.close()

    server = await asyncio.start_server(silent, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    client = Redis.from_url(f"redis://127.0.0.1:{port}/0")
    shared = SharedUserLocks(client, call_timeout=0.3)
    with caplog.at_level(logging.WARNING, logger="app.middlewares.shared_lock"):
        async with asyncio.timeout(5), shared.hold(1, 7, 1) as had:
            assert not had
    assert "cannot be used (TimeoutError)" in caplog.text
    await shared.close()
    await client.aclose()
    server.close()
    await server.wait_closed()


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


async def test_a_turn_whose_process_died_is_taken_over_after_its_liveness_key_expires(
    replicas: Callable[..., Any], telegram: FakeTelegram, llm: FakeOpenAI, redis: Redis, prefix: str
) -> None:
    first, _ = await replicas()
    shared = SharedUserLocks(redis, prefix=prefix)
    key = shared.key(first.bot.id, ALLOWED)
    # A process was SIGKILLed mid-answer: its update heads the queue, its liveness key expires.
    dead = uuid.uuid4().hex
    await redis.set(shared.alive_key(dead), 1, px=1000)
    await redis.zadd(key, {f"1:{dead}": -1})
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
