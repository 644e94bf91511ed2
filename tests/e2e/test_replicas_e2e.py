"""Two real `python -m app` processes in webhook mode behind a round-robin proxy, on one
PostgreSQL database and one Redis: every message answered once and in order (a burst sent
at once too), no turn lost or duplicated, a dialog started on one replica goes on on the
other, and a wrong secret at the proxy is refused by the replicas.

The proxy is the tests' own (tests/fakes/roundrobin.py): Debian's nginx is not installed
here. Redis db 13 (or TEST_REDIS_REPLICAS_DB) is this module's own; it is emptied before
and after each test.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import os
import re
import signal
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiogram.fsm.state import State
from redis.asyncio import Redis
from sqlalchemy import select

from app.db.engine import create_engine, create_sessionmaker
from app.db.models import Message, Persona, User
from app.fsm.personas import NewPersonaDialog
from tests.e2e.test_process import fakes_env
from tests.e2e.test_webhook import PATH, SECRET, WebhookBot, free_port, start_webhook_bot
from tests.fakes import FakeOpenAI, FakeTelegram
from tests.fakes.roundrobin import RoundRobinProxy
from tests.harness import ALLOWED, buttons, skip_or_fail

USERS = [5001 + n for n in range(20)]
TURNS = 5


@pytest.fixture
async def redis_url() -> AsyncIterator[str]:
    base = os.environ.get("TEST_REDIS_URL")
    if not base:
        skip_or_fail("Redis tests need TEST_REDIS_URL (e.g. redis://127.0.0.1:6379/15)")
    # Its own db, 13 unless TEST_REDIS_REPLICAS_DB says another (two test runs at once,
    # from two checkouts, would empty each other's).
    url = re.sub(r"/\d+$", "", str(base)) + "/" + os.environ.get("TEST_REDIS_REPLICAS_DB", "13")
    client = Redis.from_url(url)
    try:
        await client.ping()
    except OSError as exc:
        await client.aclose()
        skip_or_fail(f"Redis at TEST_REDIS_URL is unreachable: {exc}")
    await client.flushdb()  # this module's alone
    yield url
    await client.flushdb()
    await client.aclose()


@dataclass
class Deployment:
    """Two replicas and the proxy in front of them, as Telegram sees them."""

    proxy: RoundRobinProxy
    replicas: list[WebhookBot]
    database_url: str

    def backend_of(self, update_id: int) -> str:
        """The replica the proxy gave an update to (with a 2xx answer)."""
        [backend] = [
            f.backend
            for f in self.proxy.log
            if f.status == 200 and json.loads(f.body).get("update_id") == update_id
        ]
        return backend

    async def messages(self) -> dict[int, list[tuple[str, str]]]:
        """Every stored turn, per user, in id order: (role, content)."""
        engine = create_engine(self.database_url)
        try:
            async with create_sessionmaker(engine)() as session:
                rows = (await session.execute(select(Message).order_by(Message.id))).scalars()
                stored: dict[int, list[tuple[str, str]]] = {}
                for row in rows:
                    stored.setdefault(row.user_id, []).append((str(row.role), row.content))
                return stored
        finally:
            await engine.dispose()


@pytest.fixture
async def deployment(
    tmp_path: Path,
    repo_root: Path,
    telegram: FakeTelegram,
    llm: FakeOpenAI,
    postgres_url: str,
    redis_url: str,
) -> AsyncIterator[Deployment]:
    ports = [free_port(), free_port()]
    proxy = RoundRobinProxy([f"http://127.0.0.1:{port}" for port in ports])
    await proxy.start()
    env = fakes_env(tmp_path, telegram, llm) | {
        "DATABASE_URL": postgres_url,
        "REDIS_URL": redis_url,
        "ALLOWED_USER_IDS": ",".join(str(u) for u in [ALLOWED, *USERS]),
        "WEBHOOK_URL": proxy.base_url + PATH,
        "WEBHOOK_PATH": PATH,
        "WEBHOOK_SECRET": SECRET,
        # A replica unheard of for 3 s is dead: its answers interrupted, its locks free
        # (30 s in production).
        "CHAT_INTERRUPTED_AFTER": "3",
    }
    replicas: list[WebhookBot] = []
    try:
        for port in ports:  # one after the other: both upgrade the same database at start
            env_of = env | {"WEBHOOK_LISTEN": f"127.0.0.1:{port}"}
            replicas.append(await start_webhook_bot(env_of, repo_root, port))
        yield Deployment(proxy, replicas, postgres_url)
        for replica in replicas:
            if replica.process.returncode in (0, -signal.SIGKILL):
                continue  # the test stopped or killed it
            output = await replica.stop()
            assert replica.process.returncode == 0, output
            assert "Traceback" not in output, output
            # Every message took its turn in the Redis queue: none went around it.
            assert "Redis queue" not in output and "answering anyway" not in output, output
    finally:
        for replica in replicas:
            if replica.process.returncode is None:
                replica.process.kill()
                await replica.process.wait()
        await proxy.stop()


def texts(telegram: FakeTelegram, user_id: int) -> list[str]:
    return [m.text or "" for m in telegram.sent_messages(user_id)]


async def test_twenty_users_five_messages_each_are_answered_once_in_order_by_both_replicas(
    deployment: Deployment, telegram: FakeTelegram, llm: FakeOpenAI
) -> None:
    llm.token_interval = 0.01  # answers stream for a while and overlap across users
    # Each round, every user sends their next message; the users' order turns by one each
    # round so that, the proxy taking turns, each user's messages alternate between replicas.
    pushed: dict[int, list[dict[str, Any]]] = {user: [] for user in USERS}
    for turn in range(TURNS):
        for user in USERS[turn:] + USERS[:turn]:
            pushed[user].append(telegram.push_message(user, f"message {turn} from {user}"))

        def answered(turn: int = turn) -> bool:
            return all(len(telegram.sent_messages(user)) > turn for user in USERS)

        await telegram.wait_for(answered, timeout=30, description=f"round {turn} answered")
    # Whatever is still streaming settles; nothing more may come.
    expected = {user: [f"Echo: message {t} from {user}" for t in range(TURNS)] for user in USERS}
    await telegram.wait_for(
        lambda: all(texts(telegram, user) == expected[user] for user in USERS), timeout=15
    )
    await asyncio.sleep(0.5)
    assert {user: texts(telegram, user) for user in USERS} == expected
    assert len(llm.requests) == len(USERS) * TURNS

    stored = await deployment.messages()
    assert set(stored) == set(USERS)
    for user in USERS:
        sent = [f"message {t} from {user}" for t in range(TURNS)]
        assert stored[user] == [
            turn for text in sent for turn in (("user", text), ("assistant", f"Echo: {text}"))
        ]

    # Both replicas served, and each user's messages went to one and then the other.
    first, second = (replica.base_url for replica in deployment.replicas)
    assert deployment.proxy.served[first] == deployment.proxy.served[second] == 50
    for user in USERS:
        backends = [deployment.backend_of(update["update_id"]) for update in pushed[user]]
        assert all(a != b for a, b in itertools.pairwise(backends)), (user, backends)


async def test_five_messages_sent_at_once_are_answered_once_one_at_a_time_in_order(
    deployment: Deployment, telegram: FakeTelegram, llm: FakeOpenAI
) -> None:
    """Each user's five messages arrive back to back, alternating replicas, so both hold
    some at once: the per-user queue in Redis, ordered by update id, answers them in the
    order sent (with redis-py's lock alone they came out grouped by replica)."""
    llm.token_interval = 0.01
    pushed: dict[int, list[dict[str, Any]]] = {user: [] for user in USERS}
    for user in USERS:
        for turn in range(TURNS):
            pushed[user].append(telegram.push_message(user, f"message {turn} from {user}"))

    def done() -> bool:
        return all(len(telegram.sent_messages(user)) >= TURNS for user in USERS)

    await telegram.wait_for(done, timeout=40, description="every message answered")
    await asyncio.sleep(0.5)  # nothing more may come
    assert len(llm.requests) == len(USERS) * TURNS
    stored = await deployment.messages()
    assert set(stored) == set(USERS)
    for user in USERS:
        sent = [f"message {t} from {user}" for t in range(TURNS)]
        assert texts(telegram, user) == [f"Echo: {text}" for text in sent], user
        assert stored[user] == [
            turn for text in sent for turn in (("user", text), ("assistant", f"Echo: {text}"))
        ]
    # One at a time: every request carried the whole history before it, never interleaved.
    for request in llm.requests:
        history = [m["content"] for m in request["messages"] if m["role"] != "system"]
        user = int(history[-1].rsplit(" ", 1)[1])
        prefix = [content for _, content in stored[user][: len(history)]]
        assert history == prefix
    first, second = (replica.base_url for replica in deployment.replicas)
    assert deployment.proxy.served[first] == deployment.proxy.served[second] == 50
    for user in USERS:
        backends = [deployment.backend_of(update["update_id"]) for update in pushed[user]]
        assert all(a != b for a, b in itertools.pairwise(backends)), (user, backends)


async def test_a_burst_of_one_users_messages_across_both_replicas_is_answered_in_order(
    deployment: Deployment, telegram: FakeTelegram, llm: FakeOpenAI
) -> None:
    """Eight messages at once, alternating replicas, each answered slowly enough that the
    rest wait on both replicas meanwhile."""
    llm.token_interval = 0.03
    sent = [f"burst {n}" for n in range(8)]
    pushed = [telegram.push_message(ALLOWED, text) for text in sent]
    await telegram.wait_for_messages(ALLOWED, len(sent), timeout=40)
    await asyncio.sleep(0.5)  # nothing more may come
    assert texts(telegram, ALLOWED) == [f"Echo: {text}" for text in sent]
    assert len(llm.requests) == len(sent)
    # The n-th request carried every earlier message and answer: one at a time, in order.
    for n, request in enumerate(llm.requests):
        history = [m["content"] for m in request["messages"] if m["role"] != "system"]
        assert history == [t for text in sent[:n] for t in (text, f"Echo: {text}")] + [sent[n]]
    backends = [deployment.backend_of(update["update_id"]) for update in pushed]
    assert all(a != b for a, b in itertools.pairwise(backends)), backends


async def test_a_new_persona_dialog_started_on_one_replica_goes_on_on_the_other(
    deployment: Deployment, telegram: FakeTelegram, llm: FakeOpenAI, redis_url: str
) -> None:
    """Each step goes to the other replica. The next step is sent once the state is in
    Redis, as a person's reply would be: the handlers answer before they set the state, so
    a reply sent within milliseconds of the prompt may still meet the old state."""
    redis = Redis.from_url(redis_url)
    served: list[str] = []

    async def stored_state() -> str | None:
        # The only dialog in this Redis db is this user's (the key's layout is aiogram's).
        keys = [key async for key in redis.scan_iter(match=f"fsm:{telegram.bot_id}:*:state")]
        values = [await redis.get(key) for key in keys]
        found = [v.decode() if isinstance(v, bytes) else str(v) for v in values if v]
        return "|".join(found) or None

    async def state_is(expected: State | None) -> None:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + 15
        while (raw := await stored_state()) != (expected and expected.state):
            assert loop.time() < deadline, f"state {raw!r}, not {expected}"
            await asyncio.sleep(0.02)

    async def send(text: str, then: State | None) -> str:
        count = len(telegram.sent_messages(ALLOWED))
        update = telegram.push_message(ALLOWED, text)
        await telegram.wait_for_messages(ALLOWED, count + 1, timeout=15)
        await state_is(then)
        served.append(deployment.backend_of(update["update_id"]))
        return texts(telegram, ALLOWED)[-1]

    async def press(label: str, then: State | None) -> str:
        [(menu, data)] = [
            (message, data)
            for message in telegram.sent_messages(ALLOWED)
            for text, data in buttons(message)
            if label in text
        ]
        update = telegram.push_callback(ALLOWED, data, menu.message_id)
        query = update["callback_query"]["id"]
        await telegram.wait_for(lambda: query in telegram.callback_answers, timeout=15)
        await state_is(then)
        served.append(deployment.backend_of(update["update_id"]))
        return next(m.text or "" for m in telegram.sent_messages(ALLOWED) if m is menu)

    try:
        assert "name" in await send("/new_persona", NewPersonaDialog.typing_name)
        assert "Captain" in await send("Captain", NewPersonaDialog.typing_prompt)
        await send("You are Captain Jack, a cheerful pirate.", NewPersonaDialog.adding_memory)
        assert "Captain" in await press("Done", NewPersonaDialog.offering_switch)
        assert "Now you are talking to <b>Captain</b>" in await press("Talk to it now", None)
        assert await send("Ahoy!", None) == "Echo: Ahoy!"
    finally:
        await redis.aclose()
    assert "Captain Jack" in llm.requests[-1]["messages"][0]["content"]

    first, second = (replica.base_url for replica in deployment.replicas)
    assert served == [first, second, first, second, first, second]  # every step changed replica
    engine = create_engine(deployment.database_url)
    try:
        async with create_sessionmaker(engine)() as session:
            captain = (await session.scalars(select(Persona).filter_by(name="Captain"))).one()
            user = await session.get(User, ALLOWED)
    finally:
        await engine.dispose()
    assert captain.owner_id == ALLOWED
    assert user is not None and user.persona_id == captain.id


@pytest.mark.parametrize("secret", [None, "wrong-secret"], ids=["missing", "wrong"])
async def test_a_wrong_or_missing_secret_at_the_proxy_gets_401_from_either_replica(
    deployment: Deployment, telegram: FakeTelegram, llm: FakeOpenAI, secret: str | None
) -> None:
    forged = {
        "update_id": 777,
        "message": {
            "message_id": 1,
            "date": 1700000000,
            "chat": {"id": ALLOWED, "type": "private", "first_name": "Mallory"},
            "from": {"id": ALLOWED, "is_bot": False, "first_name": "Mallory"},
            "text": "forged message",
        },
    }
    headers = {"X-Telegram-Bot-Api-Secret-Token": secret} if secret is not None else {}
    async with aiohttp.ClientSession() as session:
        for _ in deployment.replicas:  # the proxy takes turns: once to each
            async with session.post(
                deployment.proxy.base_url + PATH, json=forged, headers=headers
            ) as response:
                assert response.status == 401
    assert [f.status for f in deployment.proxy.log] == [401, 401]
    assert {f.backend for f in deployment.proxy.log} == {r.base_url for r in deployment.replicas}
    await asyncio.sleep(1.0)  # time enough for an answer, were one being made
    assert llm.requests == []
    assert telegram.sent_messages(ALLOWED) == []
    assert await deployment.messages() == {}


async def test_a_replica_killed_mid_answer_leaves_a_note_with_retry_from_the_other(
    deployment: Deployment, telegram: FakeTelegram, llm: FakeOpenAI
) -> None:
    """SIGKILL while the model streams: the user's turn is stored, its answer never will be
    by that replica. The other one notices (the answer's heartbeat went stale), tells the
    user as a reply to their message, and answers /retry; meanwhile the user's next message
    is not held up by the dead replica's lock for long."""
    llm.first_token_latency = 0.2
    llm.token_interval = 0.3  # "Echo: ..." streams for seconds
    user = USERS[0]
    update = telegram.push_message(user, "the question that was cut")
    await telegram.wait_for(lambda: bool(llm.requests), timeout=15)
    await telegram.wait_for(lambda: bool(telegram.calls_of("sendMessageDraft", user)), timeout=15)
    [victim] = [
        r for r in deployment.replicas if r.base_url == deployment.backend_of(update["update_id"])
    ]
    [survivor] = [r for r in deployment.replicas if r is not victim]
    victim.process.kill()
    await victim.process.wait()
    killed_at = asyncio.get_running_loop().time()

    [note] = await telegram.wait_for_messages(user, 1, timeout=60)
    assert asyncio.get_running_loop().time() - killed_at < 60
    assert "/retry" in (note.text or "")
    [call] = telegram.calls_of("sendMessage", user)
    assert call.params["reply_parameters"]["message_id"] == update["message"]["message_id"]

    llm.token_interval = 0.0
    # The proxy still sends every other update to the dead replica: it answers 502, and
    # the fake Telegram delivers the update again, as Telegram does, until one is taken.
    telegram.push_message(user, "/retry")
    await telegram.wait_for_messages(user, 2, timeout=30)
    await asyncio.sleep(0.5)  # nothing more may come
    assert texts(telegram, user)[1:] == ["Echo: the question that was cut"]
    stored = await deployment.messages()
    assert stored[user] == [
        ("user", "the question that was cut"),
        ("assistant", "Echo: the question that was cut"),
    ]
    output = await survivor.stop()
    assert survivor.process.returncode == 0, output
    assert "Interrupted answers: 1 found, 1 users told" in output
