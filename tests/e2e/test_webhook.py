"""`python -m app` in webhook mode against the fakes: the fake Telegram POSTs updates to the
bot with the secret; a request without it gets 401; health endpoints; a clean SIGTERM that
leaves the webhook registered; start-up errors as one sentence."""

from __future__ import annotations

import asyncio
import json
import signal
import socket
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path

import aiohttp
import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.db.models import Message
from tests.e2e.test_process import fakes_env, run_app, start_app
from tests.fakes import FakeOpenAI, FakeTelegram
from tests.harness import ALLOWED

SECRET = "s3cret-webhook_token"
PATH = "/telegram"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def webhook_env(
    tmp_path: Path, telegram: FakeTelegram, llm: FakeOpenAI, port: int
) -> dict[str, str]:
    return fakes_env(tmp_path, telegram, llm) | {
        "WEBHOOK_URL": f"http://127.0.0.1:{port}{PATH}",
        "WEBHOOK_LISTEN": f"127.0.0.1:{port}",
        "WEBHOOK_PATH": PATH,
        "WEBHOOK_SECRET": SECRET,
    }


@dataclass
class WebhookBot:
    process: asyncio.subprocess.Process
    base_url: str

    async def get(self, path: str) -> tuple[int, dict[str, object]]:
        async with aiohttp.ClientSession() as session, session.get(self.base_url + path) as r:
            return r.status, json.loads(await r.text())

    async def post_update(self, update: dict[str, object], secret: str | None) -> int:
        headers = {"X-Telegram-Bot-Api-Secret-Token": secret} if secret is not None else {}
        async with (
            aiohttp.ClientSession() as session,
            session.post(self.base_url + PATH, json=update, headers=headers) as response,
        ):
            return response.status

    async def stop(self) -> str:
        """SIGTERM, then the process's stderr once it has exited."""
        self.process.send_signal(signal.SIGTERM)
        _, err = await asyncio.wait_for(self.process.communicate(), 30)
        return err.decode()


class PortTaken(Exception):
    """Another server took the port between free_port() and the bot's bind (another test
    worker's fake, say): the caller tries a new port."""


async def start_webhook_bot(env: dict[str, str], cwd: Path, port: int) -> WebhookBot:
    process = await start_app(env, "--env-file", "", cwd=cwd)
    bot = WebhookBot(process, f"http://127.0.0.1:{port}")
    loop = asyncio.get_running_loop()
    deadline = loop.time() + 30
    taken = False
    while loop.time() < deadline and process.returncode is None:
        try:
            status, body = await bot.get("/readyz")
        except aiohttp.ClientError:
            status, body = 0, {}
        except json.JSONDecodeError:  # not our /readyz: someone else's server answers there
            taken = True
            break
        if status == 200 or body.get("webhook") == "ok":  # registered, ready or not
            return bot
        await asyncio.sleep(0.1)
    if process.returncode is None:
        process.kill()
    _, err = await process.communicate()
    if taken or "address already in use" in err.decode().lower():
        raise PortTaken(port)
    raise AssertionError(f"the bot did not start in webhook mode:\n{err.decode()}")


async def start_on_a_free_port(
    make_env: Callable[[int], dict[str, str]], cwd: Path, attempts: int = 3
) -> WebhookBot:
    """start_webhook_bot on a free port, on another one when that was taken meanwhile."""
    for attempt in range(1, attempts + 1):
        port = free_port()
        try:
            return await start_webhook_bot(make_env(port), cwd, port)
        except PortTaken:
            if attempt == attempts:
                raise
    raise AssertionError("unreachable")


@pytest.fixture
async def webhook_bot(
    tmp_path: Path, repo_root: Path, telegram: FakeTelegram, llm: FakeOpenAI
) -> AsyncIterator[WebhookBot]:
    bot = await start_on_a_free_port(
        lambda port: webhook_env(tmp_path, telegram, llm, port), repo_root
    )
    yield bot
    if bot.process.returncode is None:
        bot.process.kill()
        await bot.process.wait()


async def stored_contents(db: async_sessionmaker[AsyncSession]) -> list[str]:
    async with db() as session:
        return list((await session.scalars(select(Message.content).order_by(Message.id))).all())


async def stored_soon(db: async_sessionmaker[AsyncSession], expected: list[str]) -> list[str]:
    """The stored turns once they are `expected` (or after 10 s): an answer is stored while
    it is delivered, so its message may arrive a moment before its commit."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + 10
    while (contents := await stored_contents(db)) != expected:
        if loop.time() > deadline:
            break
        await asyncio.sleep(0.05)
    return contents


async def test_a_message_arrives_by_webhook_and_is_answered_and_stored(
    webhook_bot: WebhookBot,
    telegram: FakeTelegram,
    llm: FakeOpenAI,
    db: async_sessionmaker[AsyncSession],
) -> None:
    [registration] = telegram.calls_of("setWebhook")
    assert registration.params["url"] == f"{webhook_bot.base_url}{PATH}"
    assert registration.params["secret_token"] == SECRET
    assert "message" in registration.params["allowed_updates"]
    assert int(registration.params["max_connections"]) == 40

    update = telegram.push_message(ALLOWED, "hello by webhook")
    await telegram.wait_for_messages(ALLOWED, 1, timeout=15)
    assert [m.text for m in telegram.sent_messages(ALLOWED)] == ["Echo: hello by webhook"]
    assert [d.status for d in telegram.webhook_deliveries_of(update["update_id"])] == [200]
    assert not telegram.calls_of("getUpdates")
    expected = ["hello by webhook", "Echo: hello by webhook"]
    assert await stored_soon(db, expected) == expected
    assert len(llm.requests) == 1
    output = await webhook_bot.stop()
    assert webhook_bot.process.returncode == 0, output
    assert "Traceback" not in output


@pytest.mark.parametrize("secret", [None, "wrong-secret"], ids=["missing", "wrong"])
async def test_a_request_without_the_right_secret_gets_401_and_does_nothing(
    secret: str | None,
    webhook_bot: WebhookBot,
    telegram: FakeTelegram,
    llm: FakeOpenAI,
    db: async_sessionmaker[AsyncSession],
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
    assert await webhook_bot.post_update(forged, secret) == 401
    await asyncio.sleep(1.0)  # time enough for an answer, were one being made
    assert llm.requests == []
    assert telegram.sent_messages(ALLOWED) == []
    assert await stored_contents(db) == []


async def test_healthz_and_readyz_answer_200_when_ready(webhook_bot: WebhookBot) -> None:
    assert await webhook_bot.get("/healthz") == (200, {"alive": True})
    assert await webhook_bot.get("/readyz") == (
        200,
        {"ready": True, "database": "ok", "webhook": "ok"},
    )


async def test_readyz_is_503_naming_redis_when_redis_cannot_be_reached(
    tmp_path: Path, repo_root: Path, telegram: FakeTelegram, llm: FakeOpenAI
) -> None:
    redis = {"REDIS_URL": "redis://127.0.0.1:1/0"}
    bot = await start_on_a_free_port(
        lambda port: webhook_env(tmp_path, telegram, llm, port) | redis, repo_root
    )
    try:
        status, body = await bot.get("/readyz")
        assert status == 503
        assert body["ready"] is False
        assert str(body["redis"]).startswith("unreachable")
        assert (body["database"], body["webhook"]) == ("ok", "ok")
        assert (await bot.get("/healthz"))[0] == 200  # alive all the same
    finally:
        output = await bot.stop()
    assert bot.process.returncode == 0, output


async def test_readyz_is_503_naming_the_database_when_it_goes_away(
    tmp_path: Path, repo_root: Path, telegram: FakeTelegram, llm: FakeOpenAI, postgres_url: str
) -> None:
    """Ready on PostgreSQL, then the database is dropped under it (as a server that went
    down): /readyz says so, /healthz does not care, and SIGTERM still exits 0."""
    import asyncpg

    database = {"DATABASE_URL": postgres_url}
    bot = await start_on_a_free_port(
        lambda port: webhook_env(tmp_path, telegram, llm, port) | database, repo_root
    )
    try:
        assert (await bot.get("/readyz"))[0] == 200
        base, name = postgres_url.replace("+asyncpg", "").rsplit("/", 1)
        admin = await asyncpg.connect(f"{base}/postgres", timeout=5)
        try:
            await admin.execute(f'DROP DATABASE "{name}" WITH (FORCE)')
        finally:
            await admin.close()
        status, body = await bot.get("/readyz")
        assert status == 503
        assert body["ready"] is False
        assert str(body["database"]).startswith("unreachable")
        assert body["webhook"] == "ok"
        assert (await bot.get("/healthz"))[0] == 200
    finally:
        output = await bot.stop()
    assert bot.process.returncode == 0, output


async def test_a_body_that_is_not_an_update_gets_400_and_the_bot_goes_on(
    webhook_bot: WebhookBot, telegram: FakeTelegram
) -> None:
    async with aiohttp.ClientSession() as session:
        for body in (b"<html>not json</html>", b"[1, 2]", b""):
            async with session.post(
                webhook_bot.base_url + PATH,
                data=body,
                headers={"X-Telegram-Bot-Api-Secret-Token": SECRET},
            ) as response:
                assert response.status == 400, body
    telegram.push_message(ALLOWED, "still there?")
    [answer] = await telegram.wait_for_messages(ALLOWED, 1, timeout=15)
    assert answer.text == "Echo: still there?"


async def test_sigterm_mid_answer_finishes_it_exits_zero_and_keeps_the_webhook(
    webhook_bot: WebhookBot,
    telegram: FakeTelegram,
    llm: FakeOpenAI,
    db: async_sessionmaker[AsyncSession],
) -> None:
    llm.reply = "a slow but complete answer"
    llm.first_token_latency = 1.0
    llm.token_interval = 0.1
    telegram.push_message(ALLOWED, "please answer")
    await telegram.wait_for(lambda: bool(llm.requests), timeout=15)
    output = await webhook_bot.stop()
    assert webhook_bot.process.returncode == 0, output
    assert [m.text for m in telegram.sent_messages(ALLOWED)] == [llm.reply]
    assert await stored_contents(db) == ["please answer", llm.reply]
    assert not telegram.calls_of("deleteWebhook")
    assert telegram.webhook_url == f"{webhook_bot.base_url}{PATH}"
    assert "please answer" not in output  # message text never logged at INFO


async def test_a_missing_webhook_secret_stops_start_up_with_one_sentence(
    tmp_path: Path, repo_root: Path, telegram: FakeTelegram, llm: FakeOpenAI
) -> None:
    env = webhook_env(tmp_path, telegram, llm, free_port())
    del env["WEBHOOK_SECRET"]
    code, output = await run_app(env, "--env-file", "", cwd=repo_root)
    assert code == 2
    [sentence] = output.strip().splitlines()
    assert sentence.startswith("Cannot start: WEBHOOK_SECRET is not set")
    assert "WEBHOOK_URL" in sentence
    assert not telegram.calls


async def test_a_refused_set_webhook_stops_start_up_with_one_sentence(
    tmp_path: Path, repo_root: Path, telegram: FakeTelegram, llm: FakeOpenAI
) -> None:
    telegram.fail_next(
        "setWebhook", description="Bad Request: bad webhook: HTTPS url must be provided for webhook"
    )
    env = webhook_env(tmp_path, telegram, llm, free_port())
    code, output = await run_app(env, "--env-file", "", cwd=repo_root)
    assert code == 1, output
    [sentence] = [line for line in output.splitlines() if "Cannot start" in line]
    assert "WEBHOOK_URL" in sentence and "HTTPS url must be provided" in sentence
    assert "Traceback" not in output
    assert "Unclosed" not in output
