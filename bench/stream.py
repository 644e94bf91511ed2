"""Bot API calls per streamed answer of 2,000 tokens, at several model speeds.

Runs the real dispatcher (polling) in this process against the fake Telegram and OpenAI
servers and counts the calls each answer costs, by method. Prints a table; then the same
answer with its stream cut once and healed by a second request, and the time from a user's
stop (the `stopped_message_generation` update pushed to the fake) to the model request's
connection closed at the fake model server (target: under 100 ms).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import statistics
import sys
import tempfile
import time
from collections import Counter
from collections.abc import AsyncIterator
from pathlib import Path

from pydantic import SecretStr

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from app.config import (  # noqa: E402
    AccessSettings,
    DatabaseSettings,
    LoggingSettings,
    OpenAISettings,
    Settings,
    TelegramSettings,
)
from app.factory import create_bot, create_dispatcher  # noqa: E402
from tests.fakes import FakeOpenAI, FakeTelegram  # noqa: E402
from tests.fakes.openai import count_tokens  # noqa: E402

TOKEN = "1:bench"
USER = 42
ANSWER_TOKENS = 2_000
# (label, seconds before the first token, seconds per token); the fake's default is instant.
SPEEDS = [
    ("fake default (instant)", 0.0, 0.0),
    ("200 tokens/s", 0.5, 0.005),
    ("50 tokens/s", 0.5, 0.02),
]
STARTUP = {"getMe", "getUpdates", "setMyCommands", "deleteWebhook"}


def answer_text() -> str:
    """A Markdown answer of about 2,000 tokens: prose, a list and a code block."""
    parts = []
    for i in range(24):
        parts.append(
            f"## Step {i + 1}\n\nThis **step** explains part {i} of the plan in " + "detail " * 40
        )
        parts.append("- first point\n- second point with `code`\n- third point")
    parts.append(
        "```python\n" + "\n".join(f"value_{i} = compute({i})" for i in range(40)) + "\n```"
    )
    text = "\n\n".join(parts)
    while count_tokens(text) > ANSWER_TOKENS:
        text = text[: int(len(text) * 0.98)]
    return text


@contextlib.asynccontextmanager
async def running_bot(
    first: float, interval: float, text: str
) -> AsyncIterator[tuple[FakeTelegram, FakeOpenAI]]:
    telegram = FakeTelegram(tokens={TOKEN})
    llm = FakeOpenAI(api_key="k", reply=text, first_token_latency=first, token_interval=interval)
    await telegram.start()
    await llm.start()
    folder = tempfile.mkdtemp()
    settings = Settings(
        telegram=TelegramSettings(
            bot_token=SecretStr(TOKEN), api_url=telegram.base_url, _env_file=None
        ),
        openai=OpenAISettings(
            api_key=SecretStr("k"),
            base_url=llm.base_url,
            model="test-model",
            context_window=16_000,
            max_answer_tokens=4_000,
            _env_file=None,
        ),
        database=DatabaseSettings(url=f"sqlite+aiosqlite:///{folder}/bench.db", _env_file=None),
        access=AccessSettings(allowed_user_ids="*", _env_file=None),
        logging=LoggingSettings(log_level="ERROR", _env_file=None),
    )
    bot = create_bot(settings)
    dp = create_dispatcher(settings)
    polling = asyncio.create_task(dp.start_polling(bot, handle_signals=False))
    try:
        await telegram.wait_for(lambda: bool(telegram.calls_of("getUpdates")), timeout=30)
        telegram.reset_calls()
        yield telegram, llm
    finally:
        await dp.stop_polling()
        await polling
        await telegram.stop()
        await llm.stop()


async def measure(
    label: str, first: float, interval: float, text: str, *, cut_at: float | None = None
) -> dict[str, object]:
    """One answer; with `cut_at`, its first stream drops after that share of its chunks."""
    async with running_bot(first, interval, text) as (telegram, llm):
        if cut_at is not None:
            llm.cut_stream_next(after_chunks=int(count_tokens(text) * cut_at))
        started = time.monotonic()
        telegram.push_message(USER, "Explain the plan in detail.")
        expected = len(text)
        await telegram.wait_for(
            lambda: (
                sum(len(m.text or "") for m in telegram.sent_messages(USER)) >= expected * 0.9
                and not llm.in_flight
            ),
            timeout=300,
        )
        done = time.monotonic()
        await asyncio.sleep(0.5)
        calls = Counter(c.method for c in telegram.calls if c.method not in STARTUP)
        return {
            "label": label,
            "seconds": done - started,
            "calls": sum(calls.values()),
            "by_method": dict(sorted(calls.items())),
            "messages": len(telegram.sent_messages(USER)),
            "requests": len(llm.records),
        }


async def measure_stop(runs: int) -> list[float]:
    """Milliseconds from the stop update's arrival at the fake Telegram server to the
    model connection closed, once per run, with a model at 200 tokens/s."""
    delays = []
    async with running_bot(0.05, 0.005, answer_text()) as (telegram, llm):
        for run in range(runs):
            update = telegram.push_message(USER, f"Explain the plan in detail ({run}).")
            draft_id = update["message"]["message_id"]  # the bot drafts under this id
            await llm.wait_for(lambda n=run: len(llm.records) > n)
            record = llm.records[run]
            await llm.wait_for(lambda r=record: r.chunks_sent > 40)
            await telegram.wait_for(
                lambda d_id=draft_id: any(d.draft_id == d_id for d in telegram.drafts(USER)),
                timeout=10,
            )
            pushed = time.monotonic()
            telegram.push_stop(USER, draft_id)
            await llm.wait_for(lambda r=record: r.client_closed_at is not None, timeout=10)
            assert record.client_closed_at is not None
            delays.append((record.client_closed_at - pushed) * 1000)
            await telegram.wait_for(lambda: not llm.in_flight, timeout=10)
            await asyncio.sleep(0.3)  # the stopped answer is stored and the lock released
    return delays


async def main() -> None:
    # The healed row's retry warning is expected; keep it out of the table.
    logging.getLogger("app").setLevel(logging.ERROR)
    text = answer_text()
    print(__doc__.strip().splitlines()[0])
    print(
        f"Answer: {count_tokens(text):,} tokens, {len(text):,} characters of Markdown; "
        "previews at most once a second; typing action until the first token.\n"
    )
    print(
        f"{'model speed':<34}{'answer s':>9}{'calls':>7}{'messages':>10}{'model req':>10}"
        "  calls by method"
    )
    rows = [await measure(label, first, interval, text) for label, first, interval in SPEEDS]
    rows.append(await measure("200 tokens/s, cut at 25%, healed", 0.5, 0.005, text, cut_at=0.25))
    for row in rows:
        methods = ", ".join(f"{name} {count}" for name, count in row["by_method"].items())  # type: ignore[attr-defined]
        print(
            f"{row['label']:<34}{row['seconds']:>9.1f}{row['calls']:>7}{row['messages']:>10}"
            f"{row['requests']:>10}  {methods}"
        )
    delays = sorted(await measure_stop(20))
    print(
        f"\nStop -> model connection closed, {len(delays)} runs: p50 "
        f"{statistics.median(delays):.1f} ms, max {delays[-1]:.1f} ms (target < 100 ms)"
    )


if __name__ == "__main__":
    asyncio.run(main())
