"""Our bot (`python -m app`) against a minimal aiogram bot (bench/minimal_bot.py), same load.

Each bot runs as a subprocess against fresh fake Telegram and OpenAI servers that live in
this process (tests/fakes). The fake model answers every message with a fixed latency, so
what differs between the bots is what they add around the model.

    .venv/bin/python bench/load.py

polls, on SQLite: 1 user alone, then 50 users at once.

    .venv/bin/python bench/load.py --webhook --replicas 1 2

runs each bot as N webhook replicas behind the tests' round-robin proxy
(tests/fakes/roundrobin.py), ours on a fresh PostgreSQL database and Redis (db 12 by default,
emptied before and after each run; --postgres-url, --redis-url): 1 user alone, then 100
users at once, for each N given. CPU is summed over the replicas; peak RSS is given per
replica and in total. The fake Telegram posts the updates to the proxy one at a time (its
own deliverer, which the tests use); at 100 users much of the wait is then in that queue
("posted" in the output). --parallel-delivery keeps up to the webhook's max_connections (40)
POSTs in flight, as Telegram does. A message with no answer within 60 s is counted and
shown (how far it got), and its user stops; the polling run stops at one instead.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import signal
import socket
import statistics
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

import asyncpg
import psutil
from redis.asyncio import Redis

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))  # `tests` is not installed into the venv, `app` is

from tests.fakes.openai import FakeOpenAI, count_tokens, get_encoding  # noqa: E402
from tests.fakes.roundrobin import RoundRobinProxy  # noqa: E402
from tests.fakes.telegram import Call, FakeTelegram  # noqa: E402

TOKEN = "123456:BENCH-token"
API_KEY = "bench-key"
MODEL = "test-model"
FIRST_TOKEN_LATENCY = 0.5  # seconds before the first token
TOKEN_INTERVAL = 0.02  # seconds between tokens
ANSWER_TOKENS = 60
ANSWER_TIMEOUT = 60.0
READY_TIMEOUT = 60.0
STOP_GRACE = 15.0
RSS_INTERVAL = 0.05
STDERR_SHOWN = 5  # webhook mode: a replica's first warnings and errors, shown in the report
WEBHOOK_PATH = "/telegram"
WEBHOOK_SECRET = "bench-webhook-secret"
POSTGRES_URL = "postgresql://postgres@127.0.0.1:5432/postgres"  # where fresh databases are made
REDIS_URL = "redis://127.0.0.1:6379/12"  # the tests use 13-15


@dataclass(frozen=True)
class Plan:
    """The load: one user alone, then `users` at once, each a closed loop of messages."""

    alone: int  # messages the lone user sends
    users: int
    per_user: int

    @property
    def crowd(self) -> str:
        return f"{self.users} users"


POLLING = Plan(alone=20, users=50, per_user=10)
WEBHOOK = Plan(alone=20, users=100, per_user=5)

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
    update_id: int = 0
    posted: float = 0.0  # webhook mode: pushed -> the fake's POST of the update answered 2xx

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
    replica_rss: list[int]  # peak RSS of each replica (one entry when there is one process)
    model_requests: int  # requests at the fake model: more than answers means some twice
    failed_deliveries: int  # webhook POSTs not answered 2xx (Telegram sends them again)
    unanswered: list[str]  # webhook mode: how far each message without an answer got

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

    def posted_ms(self, q: float) -> float:
        return percentile([s.posted * 1000 for s in self.samples], q)

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
    """Peak RSS of processes and their children, each and in total, sampled every
    RSS_INTERVAL in a thread (so that a busy event loop does not skip samples)."""

    def __init__(self, processes: list[psutil.Process]) -> None:
        super().__init__(daemon=True)
        self.processes = processes
        self.peaks = [0] * len(processes)
        self.peak = 0
        self._stop_event = threading.Event()

    @staticmethod
    def rss(process: psutil.Process) -> int | None:
        try:
            rss = int(process.memory_info().rss)
            for child in process.children(recursive=True):
                with contextlib.suppress(psutil.Error):
                    rss += child.memory_info().rss
        except psutil.Error:
            return None
        return rss

    def sample(self) -> None:
        sizes = [self.rss(process) for process in self.processes]
        if None in sizes:
            return
        for i, size in enumerate(sizes):
            self.peaks[i] = max(self.peaks[i], size or 0)
        self.peak = max(self.peak, sum(size or 0 for size in sizes))

    def reset(self) -> None:
        self.peaks = [0] * len(self.processes)
        self.peak = 0
        self.sample()

    def run(self) -> None:
        while not self._stop_event.wait(RSS_INTERVAL):
            self.sample()

    def stop(self) -> None:
        self._stop_event.set()
        self.join(timeout=1)


def cpu_seconds(processes: list[psutil.Process]) -> float:
    """User + system CPU of processes and their live children."""
    total = 0.0
    for process in processes:
        with contextlib.suppress(psutil.Error):
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


def bot_env(telegram: FakeTelegram, llm: FakeOpenAI, database_url: str) -> dict[str, str]:
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("TELEGRAM_", "OPENAI_", "DATABASE_", "CHAT_", "REDIS_"))
        and not key.startswith(("MEMORY_", "BUDGET_", "WEBHOOK_"))
        and key not in ("ADMIN_IDS", "ALLOWED_USER_IDS", "LOG_LEVEL")
    }
    env.update(
        TELEGRAM_BOT_TOKEN=TOKEN,
        TELEGRAM_API_URL=telegram.base_url,
        OPENAI_API_KEY=API_KEY,
        OPENAI_BASE_URL=llm.base_url,
        OPENAI_MODEL=MODEL,
        OPENAI_CONTEXT_WINDOW="16000",
        DATABASE_URL=database_url,
        ALLOWED_USER_IDS="*",
        LOG_LEVEL="WARNING",
        PYTHONUNBUFFERED="1",
    )
    return env


async def wait_polling(bot: BotProcess, telegram: FakeTelegram) -> None:
    """Until the bot's first getUpdates."""
    process = bot.process
    assert process is not None

    def ready() -> bool:
        return bool(telegram.calls_of("getUpdates")) or process.returncode is not None

    await telegram.wait_for(ready, timeout=READY_TIMEOUT, description="first getUpdates")
    if process.returncode is not None:
        raise RuntimeError(
            f"{bot.name} exited with {process.returncode} before polling:\n" + bot.stderr_tail()
        )


async def wait_webhook(bot: BotProcess, telegram: FakeTelegram, port: int, nth: int) -> None:
    """Until the `nth` setWebhook is recorded and the bot accepts connections on `port` (ours
    listens before it registers, aiogram's recipe after)."""
    process = bot.process
    assert process is not None
    deadline = time.monotonic() + READY_TIMEOUT
    while time.monotonic() < deadline and process.returncode is None:
        if len(telegram.calls_of("setWebhook")) >= nth:
            with contextlib.suppress(OSError):
                _, writer = await asyncio.open_connection("127.0.0.1", port)
                writer.close()
                await writer.wait_closed()
                return
        await asyncio.sleep(0.1)
    if process.returncode is None:
        raise RuntimeError(f"{bot.name} did not serve webhooks within {READY_TIMEOUT:.0f} s")
    raise RuntimeError(
        f"{bot.name} exited with {process.returncode} before serving webhooks:\n"
        + bot.stderr_tail()
    )


class Run:
    """One bot, as one or several processes, against its own fake servers."""

    def __init__(
        self,
        name: str,
        bots: list[BotProcess],
        telegram: FakeTelegram,
        llm: FakeOpenAI,
        *,
        tolerate_unanswered: bool = False,
    ) -> None:
        self.name = name
        # A message without an answer in ANSWER_TIMEOUT ends the run, or (tolerated) is
        # counted, and its user sends nothing more.
        self.tolerate_unanswered = tolerate_unanswered
        self.unanswered: list[str] = []
        self.bots = bots
        self.telegram = telegram
        self.llm = llm
        self.watcher = AnswerWatcher(telegram)
        self.harness = psutil.Process()

    async def _watch_exit(self, bot: BotProcess) -> None:
        process = bot.process
        assert process is not None
        code = await process.wait()
        self.watcher.fail_all(RuntimeError(f"{bot.name} exited with {code}:\n{bot.stderr_tail()}"))

    def whereabouts(self, chat_id: int, update: dict[str, Any], text: str) -> str:
        """How far a message got: its webhook POSTs, the model, the calls to its chat."""
        posts = [d.status for d in self.telegram.webhook_deliveries_of(update["update_id"])]
        asked = sum(
            1
            for r in self.llm.records
            if any(m.get("content") == text for m in r.body.get("messages", []))
        )
        calls = [c.method for c in self.telegram.calls if c.chat_id == chat_id]
        return (
            f"update {update['update_id']} POSTed with status {posts or 'never'}; "
            f"{asked} model requests carried it; calls to the chat: {calls[-8:]}"
        )

    def stderr_tails(self) -> str:
        return "\n".join(bot.stderr_tail() for bot in self.bots)

    async def ask(self, chat_id: int, text: str) -> Sample | None:
        future = self.watcher.expect(chat_id, reply_for(text))
        sent = time.monotonic()
        update = self.telegram.push_message(chat_id, text, first_name=f"User{chat_id}")
        try:
            delivered = await asyncio.wait_for(future, ANSWER_TIMEOUT)
        except TimeoutError:
            if self.tolerate_unanswered:
                self.watcher.expected.pop(chat_id, None)
                self.unanswered.append(f"chat {chat_id}: {self.whereabouts(chat_id, update, text)}")
                return None
            raise TimeoutError(
                f"{self.name}: no complete answer in chat {chat_id} within "
                f"{ANSWER_TIMEOUT:.0f} s ({self.whereabouts(chat_id, update, text)})\n"
                f"{self.stderr_tails()}"
            ) from None
        return Sample(chat_id, text, sent, delivered, update_id=update["update_id"])

    async def converse(self, chat_id: int, count: int, label: str) -> list[Sample]:
        samples = []
        for i in range(count):
            text = f"{label}-u{chat_id}-m{i}: what should I plant this week?"
            sample = await self.ask(chat_id, text)
            if sample is None:
                break
            samples.append(sample)
        return samples

    async def scenario(self, name: str, users: list[int], per_user: int) -> Result:
        processes = [bot.ps for bot in self.bots if bot.ps is not None]
        sampler = RssSampler(processes)
        first_unanswered = len(self.unanswered)
        first_call = len(self.telegram.calls)
        first_record = len(self.llm.records)
        first_delivery = len(self.telegram.webhook_deliveries)
        cpu_before = cpu_seconds(processes)
        harness_before = sum(self.harness.cpu_times()[:2])
        sampler.reset()
        sampler.start()
        started = time.monotonic()
        try:
            batches = await asyncio.gather(*(self.converse(user, per_user, name) for user in users))
        finally:
            sampler.stop()
        wall = time.monotonic() - started
        cpu = cpu_seconds(processes) - cpu_before
        harness_cpu = sum(self.harness.cpu_times()[:2]) - harness_before
        samples = [s for batch in batches for s in batch]
        if not samples:
            raise RuntimeError(f"{self.name}: no message answered in '{name}'")

        records = {}
        requests = 0
        for record in self.llm.records[first_record:]:
            users_said = [m for m in record.body.get("messages", []) if m.get("role") == "user"]
            if users_said and record.finished_at is not None:
                records[users_said[-1]["content"]] = record
                requests += 1
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
        deliveries = self.telegram.webhook_deliveries[first_delivery:]
        posted = {d.update_id: d.at for d in deliveries if d.accepted}
        for s in samples:
            if s.update_id in posted:
                s.posted = posted[s.update_id] - s.sent
        return Result(
            bot=self.name,
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
            replica_rss=sampler.peaks,
            model_requests=requests,
            failed_deliveries=sum(1 for d in deliveries if not d.accepted),
            unanswered=self.unanswered[first_unanswered:],
        )

    async def run_all(self, plan: Plan) -> list[Result]:
        watcher = asyncio.create_task(self.watcher.run())
        exit_watches = [asyncio.create_task(self._watch_exit(bot)) for bot in self.bots]
        try:
            # Imports, connections, first queries; with replicas, one message to each.
            for n in range(len(self.bots)):
                await self.converse(999_999 - n, 1, "warmup")
            alone = await self.scenario("alone", [1], plan.alone)
            users = list(range(1_001, 1_001 + plan.users))
            crowd = await self.scenario(plan.crowd, users, plan.per_user)
            return [alone, crowd]
        finally:
            self.watcher.stopped = True
            self.telegram.reset_calls()  # wakes the watcher up
            for task in (watcher, *exit_watches):
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


@contextlib.asynccontextmanager
async def fake_servers(*, parallel: bool = False) -> AsyncIterator[tuple[FakeTelegram, FakeOpenAI]]:
    """`parallel`: updates POSTed to a webhook up to its max_connections at once, as
    Telegram may; else one at a time, which at 100 users holds each message for a round
    trip through the proxy behind all the others queued."""
    telegram = FakeTelegram(tokens={TOKEN})
    telegram.webhook_parallel = parallel
    llm = FakeOpenAI(
        api_key=API_KEY,
        reply=fake_reply,
        first_token_latency=FIRST_TOKEN_LATENCY,
        token_interval=TOKEN_INTERVAL,
    )
    await telegram.start()
    await llm.start()
    try:
        yield telegram, llm
    finally:
        await llm.stop()
        await telegram.stop()


async def measure(name: str, argv: list[str], tmp: Path) -> tuple[list[Result], int | None]:
    """One polling process on SQLite."""
    async with fake_servers() as (telegram, llm):
        bot = BotProcess(
            name, argv, bot_env(telegram, llm, f"sqlite+aiosqlite:///{tmp / name}.db"), tmp
        )
        try:
            await bot.start()
            await wait_polling(bot, telegram)
            results = await Run(name, [bot], telegram, llm).run_all(POLLING)
        finally:
            await bot.stop()
    return results, bot.exit_code


@dataclass(frozen=True)
class Services:
    """The PostgreSQL server fresh databases are made on, and the Redis db the replicas share."""

    postgres_url: str
    redis_url: str

    async def unreachable(self) -> str | None:
        """None when both answer, else one sentence saying which does not and how to fix it."""
        try:
            connection = await asyncpg.connect(self.postgres_url, timeout=5)
        except (OSError, asyncpg.PostgresError, TimeoutError) as exc:
            return (
                f"PostgreSQL at {self.postgres_url} is unreachable ({type(exc).__name__}: "
                f"{exc}); start it or pass --postgres-url."
            )
        await connection.close()
        redis = Redis.from_url(self.redis_url, socket_connect_timeout=5)
        try:
            await redis.ping()
        except Exception as exc:  # noqa: BLE001 - any failure: not usable
            return (
                f"Redis at {self.redis_url} is unreachable ({type(exc).__name__}: {exc}); "
                "start it or pass --redis-url."
            )
        finally:
            await redis.aclose()
        return None

    @contextlib.asynccontextmanager
    async def fresh(self) -> AsyncIterator[str]:
        """A new empty database (its asyncpg URL), dropped afterwards; the Redis db emptied
        before and after."""
        admin = await asyncpg.connect(self.postgres_url, timeout=5)
        redis = Redis.from_url(self.redis_url)
        name = f"tba_bench_{uuid.uuid4().hex[:12]}"
        try:
            await redis.flushdb()
            await admin.execute(f'CREATE DATABASE "{name}"')
            base = self.postgres_url.rsplit("/", 1)[0].split("://", 1)[1]
            yield f"postgresql+asyncpg://{base}/{name}"
        finally:
            await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            await admin.close()
            await redis.flushdb()
            await redis.aclose()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def measure_webhook(
    name: str, argv: list[str], replicas: int, services: Services, tmp: Path, *, serial: bool
) -> tuple[list[Result], dict[str, int | None]]:
    """`replicas` webhook processes behind the round-robin proxy, on a fresh PostgreSQL
    database and the Redis db (which the minimal bot ignores)."""
    fakes = fake_servers(parallel=not serial)
    async with fakes as (telegram, llm), services.fresh() as database_url:
        ports = [free_port() for _ in range(replicas)]
        proxy = RoundRobinProxy([f"http://127.0.0.1:{port}" for port in ports])
        await proxy.start()
        env = bot_env(telegram, llm, database_url) | {
            "REDIS_URL": services.redis_url,
            "WEBHOOK_URL": proxy.base_url + WEBHOOK_PATH,
            "WEBHOOK_PATH": WEBHOOK_PATH,
            "WEBHOOK_SECRET": WEBHOOK_SECRET,
        }
        bots: list[BotProcess] = []
        try:
            # One after the other: each upgrades the same database at start.
            for n, port in enumerate(ports, 1):
                replica_env = env | {"WEBHOOK_LISTEN": f"127.0.0.1:{port}"}
                bot = BotProcess(f"{name}.{n}", argv, replica_env, tmp)
                bots.append(bot)
                await bot.start()
                await wait_webhook(bot, telegram, port, n)
            run = Run(name, bots, telegram, llm, tolerate_unanswered=True)
            results = await run.run_all(WEBHOOK)
        finally:
            for bot in bots:
                await bot.stop()
            await proxy.stop()
    return results, {bot.name: bot.exit_code for bot in bots}


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


BOTS = {
    "ours": [sys.executable, "-m", "app", "--env-file", ""],
    "minimal": [sys.executable, str(ROOT / "bench" / "minimal_bot.py")],
}


def print_plan(plan: Plan, warmup: str) -> None:
    """The fake model and the scenarios."""
    sample_reply = reply_for("alone-u1-m0: x")
    tokens = count_tokens(sample_reply)
    print(
        f"Fake model: first token after {FIRST_TOKEN_LATENCY:.2f} s, then 1 token every "
        f"{TOKEN_INTERVAL * 1000:.0f} ms; answers of ~{tokens} tokens "
        f"(~{FIRST_TOKEN_LATENCY + (tokens - 1) * TOKEN_INTERVAL:.2f} s)."
    )
    print(
        f"Scenarios, after {warmup}: 'alone' = 1 user, {plan.alone} messages; "
        f"'{plan.crowd}' = {plan.users} users\nat once, {plan.per_user} messages each. A user "
        "sends the next message once the previous answer is complete."
    )
    answer_time = FIRST_TOKEN_LATENCY + (tokens - 1) * TOKEN_INTERVAL
    print(
        f"With zero overhead '{plan.crowd}' would serve at most "
        f"{plan.users / answer_time:.1f} msg/s ({plan.users} / {answer_time:.2f} s)."
    )


async def polling_main() -> int:
    print("Load: our bot (python -m app) vs a minimal aiogram bot (bench/minimal_bot.py), each a")
    print("subprocess against fresh in-process fakes (tests.fakes FakeTelegram + FakeOpenAI).")
    print_plan(POLLING, "1 warm-up message")
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
        for name, argv in BOTS.items():
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
    alone, crowd = ours["alone"], ours[POLLING.crowd]
    ratio = alone.overhead_ms(50) / base["alone"].overhead_ms(50)
    ok &= check(
        ratio <= OVERHEAD_P50_MAX,
        f"overhead p50 alone <= {OVERHEAD_P50_MAX}x minimal: {ratio:.2f}x "
        f"({alone.overhead_ms(50):.1f} ms vs {base['alone'].overhead_ms(50):.1f} ms)",
    )
    ratio = crowd.throughput / base[POLLING.crowd].throughput
    ok &= check(
        ratio >= THROUGHPUT_MIN,
        f"throughput at {POLLING.users} users >= {THROUGHPUT_MIN}x minimal: {ratio:.2f}x "
        f"({crowd.throughput:.1f} vs {base[POLLING.crowd].throughput:.1f} msg/s)",
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


def stderr_summary(log_dir: Path) -> list[str]:
    """Per replica: how many stderr lines are errors, warnings, tracebacks (LOG_LEVEL=WARNING,
    so every line is one of those or part of one)."""
    lines = []
    for path in sorted(log_dir.glob("*.err")):
        text = path.read_text(errors="replace").splitlines()
        counts = {
            word: sum(1 for line in text if word in line)
            for word in ("ERROR", "WARNING", "Traceback")
        }
        detail = ", ".join(f"{word} {n}" for word, n in counts.items())
        lines.append(f"  {path.stem:<11}{len(text):>5} lines ({detail})")
        # The first few, without their timestamps: LOG_LEVEL=WARNING logs no private text.
        shown = [line for line in text if "ERROR" in line or "WARNING" in line][:STDERR_SHOWN]
        lines += [f"      {line.split(' ', 2)[-1]}" for line in shown]
    return lines


async def webhook_main(replicas: list[int], services: Services, *, serial: bool) -> int:
    problem = await services.unreachable()
    if problem is not None:
        print(f"Cannot run: {problem}", file=sys.stderr)
        return 2
    print(
        "Load in webhook mode: our bot (python -m app) on PostgreSQL + Redis vs a minimal aiogram"
    )
    print(
        "bot (bench/minimal_bot.py, webhook, history in memory), each as N replicas behind the\n"
        "tests' round-robin proxy (tests/fakes/roundrobin.py), against fresh in-process fakes."
    )
    print(
        f"PostgreSQL: a fresh database on {services.postgres_url} per run; "
        f"Redis: {services.redis_url}"
    )
    print_plan(WEBHOOK, "1 warm-up message per replica")
    delivery = "one at a time" if serial else "up to max_connections (40) at once"
    print(
        "Measured as in the polling run; CPU is summed over the replicas (and their children),\n"
        "peak RSS is of all replicas together (each below). Labels: ours-2r = ours, 2 replicas.\n"
        f"The fake Telegram posts updates to the proxy {delivery}; harness CPU includes the\n"
        "proxy. model req/ans > 1 would mean a message answered twice. posted (ms): update\n"
        "pushed -> the fake's POST of it answered 2xx (part of 'before'). unanswered: no\n"
        f"complete answer within {ANSWER_TIMEOUT:.0f} s; that user then stops (figures are of "
        "the answered ones)."
    )
    print()
    results: list[Result] = []
    exits: dict[str, int | None] = {}
    with tempfile.TemporaryDirectory(prefix="tba-load-") as tmp:
        for count in replicas:
            for kind, argv in BOTS.items():
                name = f"{kind[:4]}-{count}r"
                figures, codes = await measure_webhook(
                    name, argv, count, services, Path(tmp), serial=serial
                )
                results += figures
                exits |= codes
        errors = stderr_summary(Path(tmp))
    print_results(results)
    print()
    print("Per replica and deliveries:")
    print(
        f"  {'bot':<9}{'scenario':<10}{'peak RSS MB per replica':>26}{'model req/ans':>14}"
        f"{'failed POSTs':>13}{'posted p50':>11}{'posted p99':>11}{'unanswered':>11}"
    )
    for r in results:
        each = " + ".join(f"{rss / 2**20:.0f}" for rss in r.replica_rss)
        print(
            f"  {r.bot:<9}{r.scenario:<10}{each:>26}{r.model_requests / r.answers:>14.2f}"
            f"{r.failed_deliveries:>13}{r.posted_ms(50):>11.1f}{r.posted_ms(99):>11.1f}"
            f"{len(r.unanswered):>11}"
        )
    for r in results:
        for where in r.unanswered:
            print(f"  {r.bot} {r.scenario}: no answer in {ANSWER_TIMEOUT:.0f} s in {where}")
    print()
    print("Replicas' stderr:")
    print("\n".join(errors))
    print()
    print("Exit codes after SIGTERM: " + ", ".join(f"{n} {c}" for n, c in exits.items()))
    print()

    by = {(r.bot, r.scenario): r for r in results}
    crowd = WEBHOOK.crowd
    first = replicas[0]
    for count in replicas:
        ours, base = by[(f"ours-{count}r", crowd)], by[(f"mini-{count}r", crowd)]
        print(
            f"{count} replica(s), {crowd}: ours {ours.throughput:.1f} msg/s, "
            f"{ours.cpu_per_100:.2f} CPU s/100 msgs, overhead p50 {ours.overhead_ms(50):.0f} ms; "
            f"minimal {base.throughput:.1f} msg/s, {base.cpu_per_100:.2f} CPU s/100 msgs "
            f"(ours / minimal: throughput {ours.throughput / base.throughput:.2f}x, "
            f"CPU per message {ours.cpu_per_100 / base.cpu_per_100:.2f}x)"
        )
    for count in replicas:
        if count == first:
            continue
        for kind in ("ours", "mini"):
            now, then = by[(f"{kind}-{count}r", crowd)], by[(f"{kind}-{first}r", crowd)]
            print(
                f"{kind} {count} vs {first} replica(s), {crowd}: throughput "
                f"{now.throughput / then.throughput:.2f}x, CPU per message "
                f"{now.cpu_per_100 / then.cpu_per_100:.2f}x, overhead p50 "
                f"{now.overhead_ms(50) / then.overhead_ms(50):.2f}x"
            )
    print()
    ok = True
    for r in results:
        ok &= check(
            not r.unanswered and r.model_requests == r.answers and r.failed_deliveries == 0,
            f"{r.bot} {r.scenario}: every message answered once "
            f"({r.answers} answered, {len(r.unanswered)} not; {r.model_requests} model "
            f"requests; {r.failed_deliveries} webhook POSTs refused)",
        )
    return 0 if ok else 1


GROUP_CHAT = -1_001_000_000_001
GROUP_MEMBERS = 20
GROUP_ADMIN = 777_000


async def ask_group(run: Run, member: int, n: int) -> Sample:
    """A member of the group mentions the bot; the answer replies to them in the group."""
    name = f"g{member}"
    text = f"@{run.telegram.bot_username} q{n}: what should I plant this week?"
    said = f"{name}: {text.split(' ', 1)[1]}"  # as the bot tells the model (mention removed)
    future = run.watcher.expect(GROUP_CHAT, reply_for(said))
    sent = time.monotonic()
    update = run.telegram.push_group_message(GROUP_CHAT, member, text, first_name=name)
    delivered = await asyncio.wait_for(future, 180)
    return Sample(GROUP_CHAT, said, sent, delivered, update_id=update["update_id"])


async def group_main() -> int:
    """One group of GROUP_MEMBERS members asking in turn (each once), beside 50 private users
    (4 messages each): per-message overhead and Bot API calls per answer in the group against
    the private chats, and the 429s the fake Telegram answered (Telegram's 20 a minute)."""
    print(
        f"Group load: our bot (python -m app, SQLite) with one group of {GROUP_MEMBERS} members "
        "asking in turn\n(each once, a mention), beside 50 private users asking 4 messages "
        "each, at once.\nThe fake Telegram answers 429 past 20 messages a minute in a group, "
        "as Telegram does."
    )
    async with fake_servers() as (telegram, llm):
        with tempfile.TemporaryDirectory(prefix="tba-group-") as tmp:
            env = bot_env(telegram, llm, f"sqlite+aiosqlite:///{tmp}/group.db")
            env["ADMIN_IDS"] = str(GROUP_ADMIN)
            bot = BotProcess("ours", BOTS["ours"], env, Path(tmp))
            await bot.start()
            try:
                await wait_polling(bot, telegram)
                run = Run("ours", [bot], telegram, llm)
                watcher = asyncio.create_task(run.watcher.run())
                telegram.add_group(GROUP_CHAT, "Gardeners")
                telegram.push_my_chat_member(GROUP_CHAT, GROUP_ADMIN, "left", "member")
                await run.converse(999_999, 1, "warmup")
                first_call = len(telegram.calls)
                first_record = len(llm.records)

                async def group() -> list[Sample]:
                    return [await ask_group(run, 2_000 + n, n) for n in range(GROUP_MEMBERS)]

                users = list(range(1_001, 1_051))
                group_samples, *private = await asyncio.gather(
                    group(), *(run.converse(user, 4, "p") for user in users)
                )
                calls = telegram.calls[first_call:]
                run.watcher.stopped = True
                telegram.reset_calls()
                watcher.cancel()
                with contextlib.suppress(asyncio.CancelledError, RuntimeError, TimeoutError):
                    await watcher
            finally:
                await bot.stop()
    records = {}
    for record in llm.records[first_record:]:
        said = [m for m in record.body.get("messages", []) if m.get("role") == "user"]
        if said and record.finished_at is not None:
            records[said[-1]["content"]] = record
    private_samples = [s for batch in private for s in batch]
    for s in [*group_samples, *private_samples]:
        record = records[s.text]
        assert record.finished_at is not None
        s.model = record.finished_at - record.at
    in_group = [c for c in calls if c.chat_id == GROUP_CHAT and c.method not in STARTUP_METHODS]
    in_private = [
        c
        for c in calls
        if isinstance(c.chat_id, int) and c.chat_id > 0 and c.method not in STARTUP_METHODS
    ]
    finals = {reply_for(s.text) for s in group_samples}
    final_429 = sum(
        1
        for c in in_group
        if c.status == 429 and c.method in FINAL_METHODS and c.params.get("text") in finals
    )
    print()
    print(f"{'':<10}{'answers':>8}{'overhead p50':>14}{'p95':>9}{'calls/answer':>14}")
    for label, samples, chat_calls in (
        ("group", group_samples, in_group),
        ("private", private_samples, in_private),
    ):
        overheads = [s.overhead * 1000 for s in samples]
        print(
            f"{label:<10}{len(samples):>8}{percentile(overheads, 50):>12.0f}ms"
            f"{percentile(overheads, 95):>7.0f}ms{len(chat_calls) / len(samples):>14.2f}"
        )
    group_wall = max(s.delivered for s in group_samples) - min(s.sent for s in group_samples)
    for c in in_group:
        if c.status == 429:
            kind = "final" if c.params.get("text") in finals else "other"
            print(f"  429 on {c.method} ({kind})")
    print(
        f"group: {GROUP_MEMBERS} answers in {group_wall:.1f} s; 429s the fake answered in the "
        f"group: {telegram.group_flood_answers}, on final messages: {final_429}"
    )
    ok = check(final_429 == 0, f"no 429 on a final message in the group: {final_429}")
    return 0 if ok else 1


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0] if __doc__ else None)
    parser.add_argument(
        "--webhook",
        action="store_true",
        help="webhook replicas behind a round-robin proxy, ours on PostgreSQL + Redis",
    )
    parser.add_argument(
        "--replicas",
        type=int,
        nargs="+",
        metavar="N",
        help="with --webhook: the replica counts to compare, e.g. 1 2 (default: 1)",
    )
    parser.add_argument(
        "--postgres-url",
        default=POSTGRES_URL,
        help=f"with --webhook: the server to make fresh databases on (default: {POSTGRES_URL})",
    )
    parser.add_argument(
        "--redis-url",
        default=REDIS_URL,
        help=f"with --webhook: the Redis db the replicas share, emptied (default: {REDIS_URL})",
    )
    parser.add_argument(
        "--parallel-delivery",
        action="store_true",
        help="with --webhook: up to max_connections (40) POSTs of updates at once, as Telegram "
        "(default: the fake's own deliverer, one at a time)",
    )
    parser.add_argument(
        "--group",
        action="store_true",
        help="our bot alone: one group of 20 members asking in turn beside 50 private users",
    )
    args = parser.parse_args()
    if args.group:
        return asyncio.run(group_main())
    if not args.webhook:
        if args.replicas or args.parallel_delivery:
            parser.error("--replicas and --parallel-delivery need --webhook")
        return asyncio.run(polling_main())
    replicas = args.replicas or [1]
    if any(n < 1 for n in replicas):
        parser.error("--replicas: each count must be 1 or more")
    postgres_url = args.postgres_url.replace("postgresql+asyncpg://", "postgresql://", 1)
    services = Services(postgres_url, args.redis_url)
    return asyncio.run(webhook_main(replicas, services, serial=not args.parallel_delivery))


if __name__ == "__main__":
    sys.exit(main())
