"""Bot API calls per streamed answer of 2,000 tokens, at several model speeds.

Runs the real dispatcher (polling) in this process against the fake Telegram and OpenAI
servers and counts the calls each answer costs, by method. Prints a table.
"""

from __future__ import annotations

import asyncio
import sys
import tempfile
import time
from collections import Counter
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


async def measure(label: str, first: float, interval: float, text: str) -> dict[str, object]:
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
        logging=LoggingSettings(log_level="WARNING", _env_file=None),
    )
    bot = create_bot(settings)
    dp = create_dispatcher(settings)
    polling = asyncio.create_task(dp.start_polling(bot, handle_signals=False))
    try:
        await telegram.wait_for(lambda: bool(telegram.calls_of("getUpdates")), timeout=30)
        telegram.reset_calls()
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
        await asyncio.sleep(0.5)
        elapsed = time.monotonic() - started
        calls = Counter(c.method for c in telegram.calls if c.method not in STARTUP)
    finally:
        await dp.stop_polling()
        await polling
        await telegram.stop()
        await llm.stop()
    return {
        "label": label,
        "seconds": elapsed,
        "calls": sum(calls.values()),
        "by_method": dict(sorted(calls.items())),
        "messages": len(telegram.sent_messages(USER)),
    }


async def main() -> None:
    text = answer_text()
    print(__doc__.strip().splitlines()[0])
    print(
        f"Answer: {count_tokens(text):,} tokens, {len(text):,} characters of Markdown; "
        "previews at most once a second; typing action until the first token.\n"
    )
    print(f"{'model speed':<24}{'answer s':>9}{'calls':>7}{'messages':>10}  calls by method")
    for label, first, interval in SPEEDS:
        row = await measure(label, first, interval, text)
        methods = ", ".join(f"{name} {count}" for name, count in row["by_method"].items())  # type: ignore[attr-defined]
        print(f"{label:<24}{row['seconds']:>9.1f}{row['calls']:>7}{row['messages']:>10}  {methods}")


if __name__ == "__main__":
    asyncio.run(main())
