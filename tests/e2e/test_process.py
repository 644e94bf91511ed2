"""`python -m app` as an owner runs it: start-up errors, migrate, graceful SIGTERM."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.db.models import Message, PendingAnswer
from tests.fakes import FakeOpenAI, FakeTelegram
from tests.harness import ALLOWED, API_KEY, TOKEN


def app_env(tmp_path: Path, **values: str) -> dict[str, str]:
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("TELEGRAM_", "OPENAI_", "DATABASE_", "CHAT_"))
        and key not in ("ADMIN_IDS", "ALLOWED_USER_IDS", "LOG_LEVEL")
    }
    env["DATABASE_URL"] = f"sqlite+aiosqlite:///{tmp_path / 'bot.db'}"
    env.update(values)
    return env


def fakes_env(tmp_path: Path, telegram: FakeTelegram, llm: FakeOpenAI) -> dict[str, str]:
    return app_env(
        tmp_path,
        TELEGRAM_BOT_TOKEN=TOKEN,
        TELEGRAM_API_URL=telegram.base_url,
        OPENAI_API_KEY=API_KEY,
        OPENAI_BASE_URL=llm.base_url,
        OPENAI_MODEL="test-model",
        OPENAI_CONTEXT_WINDOW="8000",
        ALLOWED_USER_IDS=str(ALLOWED),
        MEMORY_TITLES="false",  # the tests count the model's requests
        MEMORY_PROFILE="false",
    )


async def start_app(env: dict[str, str], *args: str, cwd: Path) -> asyncio.subprocess.Process:
    """`python -m app ARGS` as a subprocess, its stdout and stderr piped."""
    return await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "app",
        *args,
        env=env,
        cwd=cwd,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )


async def run_app(
    env: dict[str, str], *args: str, cwd: Path, timeout: float = 60
) -> tuple[int, str]:
    process = await start_app(env, *args, cwd=cwd)
    out, err = await asyncio.wait_for(process.communicate(), timeout)
    return process.returncode or 0, (out + err).decode()


async def test_missing_settings_stop_start_up_with_one_sentence_naming_them(
    tmp_path: Path, repo_root: Path
) -> None:
    code, output = await run_app(
        app_env(tmp_path), "--env-file", str(tmp_path / "absent.env"), cwd=repo_root
    )
    assert code == 2
    assert "TELEGRAM_BOT_TOKEN" in output and "OPENAI_API_KEY" in output
    assert "Traceback" not in output
    assert len(output.strip().splitlines()) == 1


async def test_a_token_telegram_rejects_stops_start_up_with_a_sentence(
    tmp_path: Path, repo_root: Path, telegram: FakeTelegram, llm: FakeOpenAI
) -> None:
    env = fakes_env(tmp_path, telegram, llm) | {"TELEGRAM_BOT_TOKEN": "999:WRONG"}
    code, output = await run_app(env, "--env-file", "", cwd=repo_root)
    assert code == 1
    assert "Telegram rejected TELEGRAM_BOT_TOKEN" in output
    assert "Traceback" not in output


async def test_migrate_creates_the_database(tmp_path: Path, repo_root: Path) -> None:
    env = app_env(tmp_path, TELEGRAM_BOT_TOKEN=TOKEN, OPENAI_API_KEY=API_KEY)
    code, output = await run_app(env, "migrate", "--env-file", "", cwd=repo_root)
    assert code == 0, output
    assert (tmp_path / "bot.db").exists()


async def test_sigterm_lets_the_answer_in_flight_finish_then_exits_zero(
    tmp_path: Path,
    repo_root: Path,
    telegram: FakeTelegram,
    llm: FakeOpenAI,
    db: async_sessionmaker[AsyncSession],
) -> None:
    llm.reply = "a slow but complete answer"
    llm.first_token_latency = 1.0
    llm.token_interval = 0.1
    process = await start_app(fakes_env(tmp_path, telegram, llm), "--env-file", "", cwd=repo_root)
    try:
        await telegram.wait_for(lambda: bool(telegram.calls_of("getUpdates")), timeout=30)
        telegram.push_message(ALLOWED, "please answer")
        await telegram.wait_for(lambda: bool(llm.requests), timeout=15)
        process.send_signal(signal.SIGTERM)
        _, err = await asyncio.wait_for(process.communicate(), 20)
    finally:
        if process.returncode is None:
            process.kill()
    assert process.returncode == 0, err.decode()
    assert [m.text for m in telegram.sent_messages(ALLOWED)] == [llm.reply]
    async with db() as session:
        contents = (await session.scalars(select(Message.content).order_by(Message.id))).all()
    assert contents == ["please answer", llm.reply]
    assert "please answer" not in err.decode()  # message text never logged at INFO


async def test_an_answer_cut_by_sigkill_is_noted_with_retry_by_the_next_start(
    tmp_path: Path,
    repo_root: Path,
    telegram: FakeTelegram,
    llm: FakeOpenAI,
    db: async_sessionmaker[AsyncSession],
) -> None:
    """The only process is killed while the model streams: nothing was sent but a draft. The
    next start finds the user's turn without its answer, tells the user (a reply to their
    message, with /retry), and /retry answers it."""
    llm.reply = "the answer that was cut"
    llm.first_token_latency = 0.2
    llm.token_interval = 0.2
    env = fakes_env(tmp_path, telegram, llm)

    process = await start_app(env, "--env-file", "", cwd=repo_root)
    try:
        await telegram.wait_for(lambda: bool(telegram.calls_of("getUpdates")), timeout=30)
        update = telegram.push_message(ALLOWED, "please answer")
        await telegram.wait_for(lambda: bool(telegram.calls_of("sendMessageDraft")), timeout=15)
        process.kill()
        await process.wait()
        assert telegram.sent_messages(ALLOWED) == []  # a draft only, gone with the process

        telegram.reset_calls()
        process = await start_app(env, "--env-file", "", cwd=repo_root)
        [note] = await telegram.wait_for_messages(ALLOWED, 1, timeout=30)
        assert "/retry" in (note.text or "")
        [call] = telegram.calls_of("sendMessage", ALLOWED)
        assert call.params["reply_parameters"]["message_id"] == update["message"]["message_id"]

        llm.reply, llm.token_interval = "the answer after all", 0.0
        telegram.push_message(ALLOWED, "/retry")
        await telegram.wait_for_messages(ALLOWED, 2, timeout=15)
        await asyncio.sleep(0.3)  # nothing more may come
        assert [m.text for m in telegram.sent_messages(ALLOWED)][1:] == ["the answer after all"]
        process.send_signal(signal.SIGTERM)
        _, err = await asyncio.wait_for(process.communicate(), 20)
    finally:
        if process.returncode is None:
            process.kill()
    assert process.returncode == 0, err.decode()
    async with db() as session:
        contents = (await session.scalars(select(Message.content).order_by(Message.id))).all()
        left = (await session.scalars(select(PendingAnswer.id))).all()
    assert contents == ["please answer", "the answer after all"]
    assert left == []  # nothing in progress any more, nothing noted twice


async def test_a_second_process_on_the_same_sqlite_file_refuses_to_start_until_the_first_dies(
    tmp_path: Path, repo_root: Path, telegram: FakeTelegram, llm: FakeOpenAI
) -> None:
    env = fakes_env(tmp_path, telegram, llm)
    first = await start_app(env, "--env-file", "", cwd=repo_root)
    try:
        await telegram.wait_for(lambda: bool(telegram.calls_of("getUpdates")), timeout=30)
        code, output = await run_app(env, "--env-file", "", cwd=repo_root)
        assert code == 1
        [sentence] = [line for line in output.splitlines() if line.startswith("Cannot start")]
        assert f"another bot process (process {first.pid})" in sentence
        assert "PostgreSQL" in sentence and "REDIS_URL" in sentence
        # The command line may still work beside the bot.
        code, output = await run_app(env, "--env-file", "", "users", "list", cwd=repo_root)
        assert code == 0, output
    finally:
        first.kill()  # the kernel frees the claim, however the process ended
        await first.wait()
    second = await start_app(env, "--env-file", "", cwd=repo_root)
    try:
        telegram.reset_calls()
        await telegram.wait_for(lambda: bool(telegram.calls_of("getUpdates")), timeout=30)
    finally:
        second.send_signal(signal.SIGTERM)
        _, err = await asyncio.wait_for(second.communicate(), 20)
    assert second.returncode == 0, err.decode()
