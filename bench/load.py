"""Our bot (`python -m app`) against a minimal aiogram bot (bench/minimal_bot.py), same load.

Each bot runs as a subprocess against fresh fake Telegram and OpenAI servers that live in
this process (tests/fakes). The fake model answers every message with a fixed latency, so
what differs between the bots is what they add around the model.

    .venv/bin/python bench/load.py
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

import psutil

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))  # `tests` is not installed into the venv, `app` is

from tests.fakes.openai import FakeOpenAI, count_tokens, get_encoding  # noqa: E402
from tests.fakes.telegram import Call, FakeTelegram  # noqa: E402

TOKEN = "123456:BENCH-token"
API_KEY = "bench-key"
MODEL = "test-model"
FIRST_TOKEN_LATENCY = 0.5  # seconds before the first token
TOKEN_INTERVAL = 0.02  # seconds between tokens
ANSWER_TOKENS = 60
ALONE_MESSAGES = 20
USERS = 50
MESSAGES_PER_USER = 10
CROWD = f"{USERS} users"
ANSWER_TIMEOUT = 60.0
READY_TIMEOUT = 60.0
STOP_GRACE = 15.0
RSS_INTERVAL = 0.05

# Calls a bot makes at start-up or to receive updates: not part of answering.
STARTUP_METHODS = frozenset(
    {
        "getUpdates",
        "getMe",
        "setMyCommands",
        "getMyCommands",
        "deleteMyCommands",
        "deleteWebhook",
        "setWebhook",
        "getWebhookInfo",
        "setMyDescription",
        "setMyShortDescription",
        "close",
        "logOut",
    }
)
FINAL_METHODS = frozenset({"sendMessage", "editMessageText"})
SHOWING_METHODS = frozenset({"sendMessageDraft", "sendMessage", "editMessageText"})

# Targets: ours relative to the minimal bot.
OVERHEAD_P50_MAX = 1.3
THROUGHPUT_MIN = 0.8
CPU_PER_MESSAGE_MAX = 1.5
CALLS_PER_ANSWER_MAX = 4.0

_FILLER = (
    "Here is a short, steady answer so that both bots stream the same amount of text: the "
    "garden gets morning light near the fence, tomatoes like warm soil, basil grows well "
    "beside them, and compost in spring keeps the beds rich for the whole season ahead of us "
    "all, with water twice a week when it is dry and a little patience in between."
)


def reply_for(user_text: str) -> str:
    """The fake model's answer to a message: unique per message, ANSWER_TOKENS long."""
    tag = user_text.split(":", 1)[0]
    encoding = get_encoding()
    tokens = encoding.encode(f"Answer to {tag}. {_FILLER}")[:ANSWER_TOKENS]
    return encoding.decode(tokens).strip()


def fake_reply(body: dict[str, Any]) -> str:
    for message in reversed(body.get("messages") or []):
        if message.get("role") == "user":
            return reply_for(str(message.get("content") or ""))
    return reply_for("?")


# --- measuring ---------------------------------------------------------------------------------


@dataclass(slots=True)
class Sample:
    """One message: pushed at `sent`, its complete answer delivered at `delivered`."""

    chat_id: int
    text: str
    sent: float
    delivered: float
    model: float = 0.0  # the fake model's time on the request
    before_model: float = 0.0  # pushed -> request at the fake model
    after_model: float = 0.0  # last byte of the answer -> complete text delivered

    @property
    def end_to_end(self) -> float:
        return self.delivered - self.sent

    @property
    def overhead(self) -> float:
        return self.end_to_end - self.model


@dataclass(slots=True)
class Result:
    bot: str
    scenario: str
    samples: list[Sample]
    wall: float
    calls: dict[str, int]
    previews: list[int]  # per answer: drafts or preview messages shown before the final one
    cpu: float
    peak_rss: int
    harness_cpu: float
    completion_tokens: float

    @property
    def answers(self) -> int:
        return len(self.samples)

    def overhead_ms(self, q: float) -> float:
        return percentile([s.overhead * 1000 for s in self.samples], q)

    def model_ms(self, q: float) -> float:
        return percentile([s.model * 1000 for s in self.samples], q)

    def before_model_ms(self, q: float) -> float:
        return percentile([s.before_model * 1000 for s in self.samples], q)

    def after_model_ms(self, q: float) -> float:
        return percentile([s.after_model * 1000 for s in self.samples], q)

    @property
    def throughput(self) -> float:
        return self.answers / self.wall

    @property
    def calls_per_answer(self) -> float:
        return sum(self.calls.values()) / self.answers

    @property
    def previews_per_answer(self) -> float:
        return statistics.fmean(self.previews)

    @property
    def shown_share(self) -> float:
        return sum(1 for p in self.previews if p > 0) / len(self.previews)

    @property
    def cpu_per_100(self) -> float:
        return self.cpu / self.answers * 100


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    rank = (len(ordered) - 1) * q / 100
    low = int(rank)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


class RssSampler(threading.Thread):
    """Peak RSS of a process and its children, sampled every RSS_INTERVAL in a thread (so that
    a busy event loop does not skip samples)."""

    def __init__(self, process: psutil.Process) -> None:
        super().__init__(daemon=True)
        self.process = process
        self.peak = 0
        self._stop_event = threading.Event()

    def sample(self) -> None:
        try:
            rss = self.process.memory_info().rss
            for child in self.process.children(recursive=True):
                with contextlib.suppress(psutil.Error):
                    rss += child.memory_info().rss
        except psutil.Error:
            return
        self.peak = max(self.peak, rss)

    def reset(self) -> None:
        self.peak = 0
        self.sample()

    def run(self) -> None:
        while not self._stop_event.wait(RSS_INTERVAL):
            self.sample()

    def stop(self) -> None:
        self._stop_event.set()
        self.join(timeout=1)


def cpu_seconds(process: psutil.Process) -> float:
    """User + system CPU of a process and its live children."""
    total = 0.0
    for proc in (process, *process.children(recursive=True)):
        with contextlib.suppress(psutil.Error):
            times = proc.cpu_times()
            total += times.user + times.system
    return total


class AnswerWatcher:
    """Resolves, per chat, the moment the fake Telegram recorded the call that delivered the
    expected complete text (a sendMessage with it, or the editMessageText that completed it)."""

    def __init__(self, telegram: FakeTelegram) -> None:
        self.telegram = telegram
        self.index = 0
        self.expected: dict[int, tuple[str, asyncio.Future[float]]] = {}
        self.stopped = False

    def expect(self, chat_id: int, text: str) -> asyncio.Future[float]:
        future: asyncio.Future[float] = asyncio.get_running_loop().create_future()
        self.expected[chat_id] = (text, future)
        return future

    def scan(self) -> bool:
        calls = self.telegram.calls
        while self.index < len(calls):
            call = calls[self.index]
            self.index += 1
            if call.method not in FINAL_METHODS or not isinstance(call.chat_id, int):
                continue
            waiting = self.expected.get(call.chat_id)
            if waiting is not None and call.params.get("text") == waiting[0]:
                del self.expected[call.chat_id]
                if not waiting[1].done():
                    waiting[1].set_result(call.at)
        return self.stopped

    async def run(self) -> None:
        # The fake re-checks the predicate on every call it records.
        await self.telegram.wait_for(self.scan, timeout=24 * 3600)

    def fail_all(self, exc: BaseException) -> None:
        for _, future in self.expected.values():
            if not future.done():
                future.set_exception(exc)
        self.expected.clear()


# --- the bot under test ---------------------------------------------------------------------


@dataclass
class BotProcess:
    name: str
    argv: list[str]
    env: dict[str, str]
    log_dir: Path
    process: asyncio.subprocess.Process | None = None
    ps: psutil.Process | None = None
    exit_code: int | None = None
    _logs: list[TextIO] = field(default_factory=list)

    async def start(self) -> None:
        out = (self.log_dir / f"{self.name}.out").open("w")
        err = (self.log_dir / f"{self.name}.err").open("w")
        self._logs = [out, err]
        self.process = await asyncio.create_subprocess_exec(
            *self.argv, env=self.env, cwd=ROOT, stdout=out, stderr=err
        )
        self.ps = psutil.Process(self.process.pid)

    def stderr_tail(self, lines: int = 15) -> str:
        path = self.log_dir / f"{self.name}.err"
        if not path.exists():
            return ""
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])

    async def stop(self) -> None:
        """SIGTERM, then SIGKILL after STOP_GRACE seconds."""
        process = self.process
        if process is None:
            return
        if process.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                process.send_signal(signal.SIGTERM)
            try:
                await asyncio.wait_for(process.wait(), STOP_GRACE)
            except TimeoutError:
                with contextlib.suppress(ProcessLookupError):
                    process.kill()
                await process.wait()
        self.exit_code = process.returncode
        for log in self._logs:
            log.close()


def bot_env(telegram: FakeTelegram, llm: FakeOpenAI, database: Path) -> dict[str, str]:
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("TELEGRAM_", "OPENAI_", "DATABASE_", "CHAT_", "REDIS_"))
        and key not in ("ADMIN_IDS", "ALLOWED_USER_IDS", "LOG_LEVEL")
    }
    env.update(
        TELEGRAM_BOT_TOKEN=TOKEN,
        TELEGRAM_API_URL=telegram.base_url,
        OPENAI_API_KEY=API_KEY,
        OPENAI_BASE_URL=llm.base_url,
        OPENAI_MODEL=MODEL,
        OPENAI_CONTEXT_WINDOW="16000",
        DATABASE_URL=f"sqlite+aiosqlite:///{database}",
        ALLOWED_USER_IDS="*",
        LOG_LEVEL="WARNING",
        PYTHONUNBUFFERED="1",
    )
    return env


class Run:
    """One bot process against its own fake servers."""

    def __init__(self, bot: BotProcess, telegram: FakeTelegram, llm: FakeOpenAI) -> None:
        self.bot = bot
        self.telegram = telegram
        self.llm = llm
        self.watcher = AnswerWatcher(telegram)
        self.harness = psutil.Process()
        self._exit_watch: asyncio.Task[None] | None = None

    async def wait_ready(self) -> None:
        process = self.bot.process
        assert process is not None

        def ready() -> bool:
            return bool(self.telegram.calls_of("getUpdates")) or process.returncode is not None

        await self.telegram.wait_for(ready, timeout=READY_TIMEOUT, description="first getUpdates")
        if process.returncode is not None:
            raise RuntimeError(
                f"{self.bot.name} exited with {process.returncode} before polling:\n"
                + self.bot.stderr_tail()
            )

    async def _watch_exit(self) -> None:
        process = self.bot.process
        assert process is not None
        code = await process.wait()
        self.watcher.fail_all(
            RuntimeError(f"{self.bot.name} exited with {code}:\n{self.bot.stderr_tail()}")
        )

    async def ask(self, chat_id: int, text: str) -> Sample:
        future = self.watcher.expect(chat_id, reply_for(text))
        sent = time.monotonic()
        self.telegram.push_message(chat_id, text, first_name=f"User{chat_id}")
        try:
            delivered = await asyncio.wait_for(future, ANSWER_TIMEOUT)
        except TimeoutError:
            raise TimeoutError(
                f"{self.bot.name}: no complete answer in chat {chat_id} within "
                f"{ANSWER_TIMEOUT:.0f} s\n{self.bot.stderr_tail()}"
            ) from None
        return Sample(chat_id, text, sent, delivered)

    async def converse(self, chat_id: int, count: int, label: str) -> list[Sample]:
        return [
            await self.ask(chat_id, f"{label}-u{chat_id}-m{i}: what should I plant this week?")
            for i in range(count)
        ]

    async def scenario(self, name: str, users: list[int], per_user: int) -> Result:
        assert self.bot.ps is not None
        sampler = RssSampler(self.bot.ps)
        first_call = len(self.telegram.calls)
        first_record = len(self.llm.records)
        cpu_before = cpu_seconds(self.bot.ps)
        harness_before = sum(self.harness.cpu_times()[:2])
        sampler.reset()
        sampler.start()
        started = time.monotonic()
        try:
            batches = await asyncio.gather(*(self.converse(user, per_user, name) for user in users))
        finally:
            sampler.stop()
        wall = time.monotonic() - started
        cpu = cpu_seconds(self.bot.ps) - cpu_before
        harness_cpu = sum(self.harness.cpu_times()[:2]) - harness_before
        samples = [s for batch in batches for s in batch]

        records = {}
        for record in self.llm.records[first_record:]:
            users_said = [m for m in record.body.get("messages", []) if m.get("role") == "user"]
            if users_said and record.finished_at is not None:
                records[users_said[-1]["content"]] = record
        for s in samples:
            record = records[s.text]
            assert record.finished_at is not None
            s.model = record.finished_at - record.at
            s.before_model = record.at - s.sent
            s.after_model = s.delivered - record.finished_at

        calls = self.telegram.calls[first_call:]
        counted: dict[str, int] = {}
        for call in calls:
            if call.method not in STARTUP_METHODS:
                counted[call.method] = counted.get(call.method, 0) + 1
        return Result(
            bot=self.bot.name,
            scenario=name,
            samples=samples,
            wall=max(s.delivered for s in samples) - min(s.sent for s in samples),
            calls=counted,
            previews=previews(samples, calls),
            cpu=cpu,
            peak_rss=sampler.peak,
            harness_cpu=harness_cpu / wall,
            completion_tokens=statistics.fmean(
                r.completion_tokens for r in self.llm.records[first_record:]
            ),
        )

    async def run_all(self) -> list[Result]:
        watcher = asyncio.create_task(self.watcher.run())
        self._exit_watch = asyncio.create_task(self._watch_exit())
        try:
            await self.wait_ready()
            await self.converse(999_999, 1, "warmup")  # imports, connections, first queries
            alone = await self.scenario("alone", [1], ALONE_MESSAGES)
            crowd = await self.scenario(CROWD, list(range(1_001, 1_001 + USERS)), MESSAGES_PER_USER)
            return [alone, crowd]
        finally:
            self.watcher.stopped = True
            self.telegram.reset_calls()  # wakes the watcher up
            for task in (watcher, self._exit_watch):
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError, RuntimeError, TimeoutError):
                    await task


def previews(samples: list[Sample], calls: list[Call]) -> list[int]:
    """Per answer: drafts, preview messages or edits shown before the final delivery."""
    by_chat: dict[int, list[Call]] = {}
    for call in calls:
        if call.method in SHOWING_METHODS and isinstance(call.chat_id, int):
            by_chat.setdefault(call.chat_id, []).append(call)
    return [
        sum(1 for c in by_chat.get(s.chat_id, []) if s.sent <= c.at < s.delivered) for s in samples
    ]


async def measure(name: str, argv: list[str], tmp: Path) -> tuple[list[Result], int | None]:
    telegram = FakeTelegram(tokens={TOKEN})
    llm = FakeOpenAI(
        api_key=API_KEY,
        reply=fake_reply,
        first_token_latency=FIRST_TOKEN_LATENCY,
        token_interval=TOKEN_INTERVAL,
    )
    await telegram.start()
    await llm.start()
    bot = BotProcess(name, argv, bot_env(telegram, llm, tmp / f"{name}.db"), tmp)
    try:
        await bot.start()
        results = await Run(bot, telegram, llm).run_all()
    finally:
        await bot.stop()
        await llm.stop()
        await telegram.stop()
    return results, bot.exit_code


# --- report -----------------------------------------------------------------------------------


def print_results(results: list[Result]) -> None:
    print("Latency (ms; overhead = before the model + after it):")
    print(
        f"  {'bot':<9}{'scenario':<10}{'msgs':>5}{'wall s':>8}{'msg/s':>7}{'model p50':>10}"
        f"{'ovh p50':>9}{'ovh p99':>9}{'before p50':>11}{'after p50':>10}{'tok/ans':>8}"
    )
    for r in results:
        print(
            f"  {r.bot:<9}{r.scenario:<10}{r.answers:>5}{r.wall:>8.1f}{r.throughput:>7.1f}"
            f"{r.model_ms(50):>10.0f}{r.overhead_ms(50):>9.1f}{r.overhead_ms(99):>9.1f}"
            f"{r.before_model_ms(50):>11.1f}{r.after_model_ms(50):>10.1f}"
            f"{r.completion_tokens:>8.1f}"
        )
    print()
    print("Cost:")
    print(
        f"  {'bot':<9}{'scenario':<10}{'calls/answer':>13}{'shown/answer':>13}"
        f"{'CPU s/100 msgs':>15}{'peak RSS MB':>12}{'harness CPU':>12}"
    )
    for r in results:
        print(
            f"  {r.bot:<9}{r.scenario:<10}{r.calls_per_answer:>13.2f}"
            f"{r.previews_per_answer:>13.2f}{r.cpu_per_100:>15.2f}{r.peak_rss / 2**20:>12.1f}"
            f"{r.harness_cpu:>12.0%}"
        )
    print()
    print("Bot API calls per answer, by method:")
    for r in results:
        detail = ", ".join(f"{m} {n / r.answers:.2f}" for m, n in sorted(r.calls.items()))
        print(f"  {r.bot:<9}{r.scenario:<10}{detail}")


RATIOS: list[tuple[str, Callable[[Result], float]]] = [
    ("overhead p50", lambda r: r.overhead_ms(50)),
    ("overhead p99", lambda r: r.overhead_ms(99)),
    ("messages per second", lambda r: r.throughput),
    ("CPU per message", lambda r: r.cpu_per_100),
    ("peak RSS", lambda r: r.peak_rss),
]


def check(passed: bool, text: str) -> bool:
    print(f"{'PASS' if passed else 'MISS'}  {text}")
    return passed


async def main() -> int:
    print("Load: our bot (python -m app) vs a minimal aiogram bot (bench/minimal_bot.py), each a")
    print("subprocess against fresh in-process fakes (tests.fakes FakeTelegram + FakeOpenAI).")
    sample_reply = reply_for("alone-u1-m0: x")
    tokens = count_tokens(sample_reply)
    print(
        f"Fake model: first token after {FIRST_TOKEN_LATENCY:.2f} s, then 1 token every "
        f"{TOKEN_INTERVAL * 1000:.0f} ms; answers of ~{tokens} tokens "
        f"(~{FIRST_TOKEN_LATENCY + (tokens - 1) * TOKEN_INTERVAL:.2f} s)."
    )
    print(
        f"Scenarios, after 1 warm-up message: 'alone' = 1 user, {ALONE_MESSAGES} messages; "
        f"'{CROWD}' = {USERS} users\nat once, {MESSAGES_PER_USER} messages each. A user sends "
        "the next message once the previous answer is complete."
    )
    answer_time = FIRST_TOKEN_LATENCY + (tokens - 1) * TOKEN_INTERVAL
    print(
        f"With zero overhead '{CROWD}' would serve at most {USERS / answer_time:.1f} msg/s "
        f"({USERS} / {answer_time:.2f} s)."
    )
    print(
        "End-to-end: update pushed -> fake Telegram records the call delivering the complete\n"
        "text. Overhead = end-to-end - the fake model's time on the request (arrival to last\n"
        "byte). calls/answer: all but getUpdates and start-up calls; shown/answer: drafts or\n"
        "previews shown before the final message. CPU: user+system of the bot process and its\n"
        "children over the scenario. harness CPU: this process (fakes + users), share of a core."
    )
    print()
    results: list[Result] = []
    exits: dict[str, int | None] = {}
    with tempfile.TemporaryDirectory(prefix="tba-load-") as tmp:
        bots = {
            "ours": [sys.executable, "-m", "app", "--env-file", ""],
            "minimal": [sys.executable, str(ROOT / "bench" / "minimal_bot.py")],
        }
        for name, argv in bots.items():
            figures, exits[name] = await measure(name, argv, Path(tmp))
            results += figures
    print_results(results)
    print()
    print("Exit codes after SIGTERM: " + ", ".join(f"{n} {c}" for n, c in exits.items()))
    print()

    ours = {r.scenario: r for r in results if r.bot == "ours"}
    base = {r.scenario: r for r in results if r.bot == "minimal"}
    scenarios = list(ours)
    print(f"{'ours / minimal':<22}" + "".join(f"{s:>12}" for s in scenarios))
    for label, value in RATIOS:
        cells = "".join(f"{value(ours[s]) / value(base[s]):>11.2f}x" for s in scenarios)
        print(f"{label:<22}{cells}")
    print()

    ok = True
    alone, crowd = ours["alone"], ours[CROWD]
    ratio = alone.overhead_ms(50) / base["alone"].overhead_ms(50)
    ok &= check(
        ratio <= OVERHEAD_P50_MAX,
        f"overhead p50 alone <= {OVERHEAD_P50_MAX}x minimal: {ratio:.2f}x "
        f"({alone.overhead_ms(50):.1f} ms vs {base['alone'].overhead_ms(50):.1f} ms)",
    )
    ratio = crowd.throughput / base[CROWD].throughput
    ok &= check(
        ratio >= THROUGHPUT_MIN,
        f"throughput at {USERS} users >= {THROUGHPUT_MIN}x minimal: {ratio:.2f}x "
        f"({crowd.throughput:.1f} vs {base[CROWD].throughput:.1f} msg/s)",
    )
    for scenario in scenarios:
        ratio = ours[scenario].cpu_per_100 / base[scenario].cpu_per_100
        ok &= check(
            ratio <= CPU_PER_MESSAGE_MAX,
            f"CPU per message ({scenario}) <= {CPU_PER_MESSAGE_MAX}x minimal: {ratio:.2f}x "
            f"({ours[scenario].cpu_per_100:.2f} vs {base[scenario].cpu_per_100:.2f} s/100 msgs)",
        )
    for scenario in scenarios:
        r = ours[scenario]
        ok &= check(
            r.calls_per_answer <= CALLS_PER_ANSWER_MAX and r.previews_per_answer >= 1,
            f"<= {CALLS_PER_ANSWER_MAX:.0f} Bot API calls per answer, streaming visibly "
            f"({scenario}): {r.calls_per_answer:.2f} calls, {r.previews_per_answer:.2f} "
            f"previews per answer ({r.shown_share:.0%} of answers showed one)",
        )
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
