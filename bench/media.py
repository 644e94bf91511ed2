"""What voice messages, photos and documents cost the bot, measured as issue 12 asks.

    .venv/bin/python bench/media.py [--runs 5]

Our bot (`python -m app`, on SQLite) runs as a subprocess against fake Telegram and OpenAI
servers in this process (tests/fakes). For a 1-minute voice message, a 2-megapixel photo and
a 20-page PDF it prints the time from the file message to the model's request, and that
time less the fake servers' own part of it (fetching the file from the fake Telegram, and
the fake transcription, timed by doing the same calls directly). Then the bot's peak memory
(RSS) while it takes in a 20 MB text document, and how fast documents are read
(app/documents, in this process: pages per second).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import io
import os
import random
import signal
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import aiohttp
import psutil
from fpdf import FPDF
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))  # `tests` is not installed into the venv, `app` is

from app.documents.extract import extract  # noqa: E402
from tests.fakes.openai import FakeOpenAI  # noqa: E402
from tests.fakes.telegram import FakeTelegram  # noqa: E402

TOKEN = "123456:BENCH-token"
API_KEY = "bench-key"
USER = 1001
LOREM = (
    "The committee reviewed the quarterly figures and noted that revenue grew in every "
    "region, while costs stayed flat. "
)


def voice_minute() -> bytes:
    """About what a minute of Telegram's Opus voice weighs (16 kbit/s): the fake transcribes
    any bytes."""
    return b"OggS" + random.randbytes(120_000)


def photo_2mp() -> bytes:
    """A 1600x1250 JPEG with detail in it (noise compresses as badly as a real photo)."""
    noise = Image.effect_noise((1600, 1250), 64).convert("RGB")
    buffer = io.BytesIO()
    noise.save(buffer, format="JPEG", quality=85)
    return buffer.getvalue()


def pdf_pages(pages: int) -> bytes:
    pdf = FPDF()
    pdf.set_font("Helvetica", size=11)
    for page in range(pages):
        pdf.add_page()
        pdf.multi_cell(0, 5, f"Page {page + 1}. " + LOREM * 22)
    return bytes(pdf.output())


def text_document(size: int) -> bytes:
    paragraph = (LOREM * 6 + "\n\n").encode()
    return (paragraph * (size // len(paragraph) + 1))[:size]


class Bot:
    def __init__(self, telegram: FakeTelegram, llm: FakeOpenAI, data: Path) -> None:
        self.env = {
            key: value
            for key, value in os.environ.items()
            if not key.startswith(
                ("TELEGRAM_", "OPENAI_", "DATABASE_", "MEMORY_", "DOCUMENT_", "REDIS_")
            )
        }
        self.env.update(
            TELEGRAM_BOT_TOKEN=TOKEN,
            TELEGRAM_API_URL=telegram.base_url,
            OPENAI_API_KEY=API_KEY,
            OPENAI_BASE_URL=llm.base_url,
            OPENAI_MODEL="test-model",
            OPENAI_VISION_MODELS="test-model",
            OPENAI_CONTEXT_WINDOW="16000",
            DATABASE_URL=f"sqlite+aiosqlite:///{data}/bench.db",
            ALLOWED_USER_IDS="*",
            LOG_LEVEL="WARNING",
        )
        self.telegram = telegram
        self.process: asyncio.subprocess.Process | None = None
        self.ps: psutil.Process | None = None

    async def start(self) -> None:
        self.process = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "app", env=self.env, cwd=ROOT
        )
        self.ps = psutil.Process(self.process.pid)
        await self.telegram.wait_for(
            lambda: bool(self.telegram.calls_of("getUpdates")), timeout=60, description="polling"
        )

    async def stop(self) -> None:
        if self.process is not None and self.process.returncode is None:
            self.process.send_signal(signal.SIGTERM)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.process.wait(), 20)

    def rss(self) -> int:
        assert self.ps is not None
        return int(self.ps.memory_info().rss)


async def until_request(llm: FakeOpenAI, before: int) -> float:
    """When the next chat request arrived at the fake model (time.monotonic())."""
    await llm.wait_for(lambda: len(llm.records) > before, timeout=120, description="request")
    return llm.records[before].at


async def until_answered(telegram: FakeTelegram, before: int) -> None:
    """Until the answer (not a notice before it, such as a long document's size) is in."""

    def answered() -> bool:
        return any((m.text or "").startswith("Echo") for m in telegram.sent_messages(USER)[before:])

    await telegram.wait_for(answered, timeout=300, description="the answer")


async def fakes_time(
    telegram: FakeTelegram, llm: FakeOpenAI, file_id: str, transcribe: bool
) -> float:
    """The fakes' own part: getFile and the download, and the transcription, done directly."""
    async with aiohttp.ClientSession() as http:
        started = time.monotonic()
        base = telegram.base_url
        async with http.post(f"{base}/bot{TOKEN}/getFile", json={"file_id": file_id}) as reply:
            path = (await reply.json())["result"]["file_path"]
        async with http.get(f"{base}/file/bot{TOKEN}/{path}") as reply:
            data = await reply.read()
        if transcribe:
            form = aiohttp.FormData()
            form.add_field("file", data, filename="voice.ogg")
            form.add_field("model", "gpt-4o-mini-transcribe")
            headers = {"Authorization": f"Bearer {API_KEY}"}
            async with http.post(
                f"{llm.base_url}/audio/transcriptions", data=form, headers=headers
            ) as reply:
                await reply.read()
        return time.monotonic() - started


async def time_kind(
    bot: Bot,
    telegram: FakeTelegram,
    llm: FakeOpenAI,
    push: Callable[[], dict[str, Any]],
    file_of: Callable[[dict[str, Any]], str],
    runs: int,
    transcribe: bool = False,
) -> tuple[float, float]:
    totals: list[float] = []
    fakes: list[float] = []
    for _ in range(runs):
        before, sent = len(llm.records), len(telegram.sent_messages(USER))
        pushed = time.monotonic()
        update = push()
        totals.append(await until_request(llm, before) - pushed)
        await until_answered(telegram, sent)
        fakes.append(await fakes_time(telegram, llm, file_of(update), transcribe))
    return statistics.median(totals), statistics.median(fakes)


async def peak_rss(bot: Bot, telegram: FakeTelegram, data: bytes) -> tuple[int, int, float]:
    baseline = bot.rss()
    peak = baseline
    sent = len(telegram.sent_messages(USER))
    started = time.monotonic()
    telegram.push_document(USER, data, "minutes.txt", caption="What did the committee note?")

    def answered() -> bool:
        # The notice of its size, then the answer.
        return any((m.text or "").startswith("Echo") for m in telegram.sent_messages(USER)[sent:])

    while not answered():
        peak = max(peak, bot.rss())
        await asyncio.sleep(0.02)
        if time.monotonic() - started > 300:
            shown = [m.text for m in telegram.sent_messages(USER)[sent:]]
            raise TimeoutError(f"no answer to the 20 MB document: {shown}")
    return baseline, peak, time.monotonic() - started


def extraction_speed(pages: int, repeat: int = 5) -> float:
    data = pdf_pages(pages)
    best = float("inf")
    for _ in range(repeat):
        started = time.perf_counter()
        extract(data, "report.pdf", "application/pdf")
        best = min(best, time.perf_counter() - started)
    return pages / best


async def main(runs: int) -> None:
    telegram, llm = FakeTelegram(tokens={TOKEN}), FakeOpenAI(api_key=API_KEY)
    await telegram.start()
    await llm.start()
    voice, photo, pdf = voice_minute(), photo_2mp(), pdf_pages(20)
    with tempfile.TemporaryDirectory() as data:
        bot = Bot(telegram, llm, Path(data))
        await bot.start()
        try:
            before = len(llm.records)
            telegram.push_message(USER, "Hello")  # the first message warms every path up
            await until_request(llm, before)
            await until_answered(telegram, 0)
            print(f"media bench: median of {runs} runs each, bot on SQLite, fakes in-process")
            print(f"bot RSS after its first answer: {bot.rss() / 2**20:.0f} MB")
            print(f"{'message':<26}{'to request':>12}{'fakes':>10}{'bot adds':>10}")
            cases: list[tuple[str, Callable[[], dict[str, Any]], Callable[..., str], bool]] = [
                (
                    "voice, 1 minute",
                    lambda: telegram.push_voice(USER, voice, 60),
                    lambda u: u["message"]["voice"]["file_id"],
                    True,
                ),
                (
                    f"photo 2 MP ({len(photo) // 1024} KB)",
                    lambda: telegram.push_photo(USER, photo, caption="What is it?"),
                    lambda u: u["message"]["photo"][-1]["file_id"],
                    False,
                ),
                (
                    f"PDF 20 pages ({len(pdf) // 1024} KB)",
                    lambda: telegram.push_document(USER, pdf, "report.pdf", caption="Sum up"),
                    lambda u: u["message"]["document"]["file_id"],
                    False,
                ),
            ]
            for name, push, file_of, transcribe in cases:
                total, fakes = await time_kind(bot, telegram, llm, push, file_of, runs, transcribe)
                print(
                    f"{name:<26}{total * 1000:>10.0f}ms{fakes * 1000:>8.0f}ms"
                    f"{(total - fakes) * 1000:>8.0f}ms"
                )
            size = 20 * 1024 * 1024 - 4096
            baseline, peak, seconds = await peak_rss(bot, telegram, text_document(size))
            print(
                f"20 MB text document: RSS {baseline / 2**20:.0f} MB before, peak "
                f"{peak / 2**20:.0f} MB (+{(peak - baseline) / 2**20:.0f} MB), answered in "
                f"{seconds:.1f} s"
            )
        finally:
            await bot.stop()
            await telegram.stop()
            await llm.stop()
    for pages in (20, 200):
        print(f"PDF text extraction, {pages} pages: {extraction_speed(pages):.0f} pages/s")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    asyncio.run(main(parser.parse_args().runs))
