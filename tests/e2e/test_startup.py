"""`python -m app` needs only a valid token and the database: the niceties may fail, and a
server that is no Bot API stops it with one sentence naming TELEGRAM_API_URL."""

from __future__ import annotations

import asyncio
import signal
from collections.abc import Callable
from pathlib import Path

import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.db.models import Message
from tests.e2e.test_process import fakes_env, run_app, start_app
from tests.fakes import FakeOpenAI, FakeTelegram
from tests.harness import ALLOWED


async def test_a_server_without_set_my_commands_starts_and_answers(
    tmp_path: Path,
    repo_root: Path,
    telegram: FakeTelegram,
    llm: FakeOpenAI,
    db: async_sessionmaker[AsyncSession],
) -> None:
    telegram.unknown_methods.add("setMyCommands")
    process = await start_app(fakes_env(tmp_path, telegram, llm), "--env-file", "", cwd=repo_root)
    try:
        await telegram.wait_for(lambda: bool(telegram.calls_of("getUpdates")), timeout=30)
        telegram.push_message(ALLOWED, "are you there?")
        await telegram.wait_for_messages(ALLOWED, 1, timeout=15)
        process.send_signal(signal.SIGTERM)
        _, err = await asyncio.wait_for(process.communicate(), 20)
    finally:
        if process.returncode is None:
            process.kill()
    output = err.decode()
    assert process.returncode == 0, output
    assert [m.text for m in telegram.sent_messages(ALLOWED)] == ["Echo: are you there?"]
    async with db() as session:
        contents = (await session.scalars(select(Message.content).order_by(Message.id))).all()
    assert contents == ["are you there?", "Echo: are you there?"]
    [warning] = [line for line in output.splitlines() if "WARNING app." in line]
    assert "Command menu not set" in warning and "TelegramNotFound" in warning
    assert "Traceback" not in output
    assert "Unclosed" not in output


@pytest.mark.parametrize(
    ("server", "answer"),
    [
        ("the model server", "JSON of another kind"),
        ("an HTML 404 page", 'an HTML page ("404 Not Found")'),
        ("an HTML 502 page", 'an HTML page ("502 Bad Gateway")'),
        ("a JSON 404", "TelegramNotFound: Not Found"),
    ],
)
async def test_a_url_that_is_no_bot_api_stops_start_up_with_one_sentence(
    server: str,
    answer: str,
    tmp_path: Path,
    repo_root: Path,
    telegram: FakeTelegram,
    llm: FakeOpenAI,
) -> None:
    env = fakes_env(tmp_path, telegram, llm)
    misconfigure: dict[str, Callable[[], None]] = {
        "the model server": lambda: env.update(TELEGRAM_API_URL=llm.base_url),
        "an HTML 404 page": lambda: telegram.answer_html_next("getMe", status=404),
        "an HTML 502 page": lambda: telegram.answer_html_next("getMe", times=99),  # retried
        "a JSON 404": lambda: telegram.unknown_methods.add("getMe"),
    }
    misconfigure[server]()
    code, output = await run_app(env, "--env-file", "", cwd=repo_root)
    assert code == 1, output
    [sentence] = [line for line in output.splitlines() if "Cannot start" in line]
    assert sentence.startswith(f"Cannot start: TELEGRAM_API_URL ({env['TELEGRAM_API_URL']})")
    assert answer in sentence
    assert "Traceback" not in output
    assert "Unclosed" not in output
    assert "<html" not in output
    assert not telegram.calls_of("getUpdates")


async def test_a_database_that_cannot_be_reached_stops_start_up_with_one_sentence(
    tmp_path: Path, repo_root: Path, telegram: FakeTelegram, llm: FakeOpenAI
) -> None:
    env = fakes_env(tmp_path, telegram, llm)
    env["DATABASE_URL"] = "postgresql://bot:secret@127.0.0.1:1/assistant"  # nothing listens
    code, output = await run_app(env, "--env-file", "", cwd=repo_root)
    assert code == 1, output
    [sentence] = [line for line in output.splitlines() if "Cannot start" in line]
    assert "DATABASE_URL" in sentence and "127.0.0.1:1/assistant" in sentence
    assert "secret" not in output  # the password is hidden
    assert "Traceback" not in output
    assert "Unclosed" not in output
    assert not telegram.calls_of("getUpdates")
