"""Tools: the tokens their schemas add to a request, and the time the bot adds per round.

    .venv/bin/python bench/tools.py

1. Schema tokens. The built-in tools as the factory builds them with every one on
   (current_datetime, calculator, read_page, web_search, offered because a SearXNG URL
   is set, nothing is contacted; the reminders plugin's three and the images plugin's
   generate_image, the default PLUGINS; generate_image only for users with the right
   `images`), counted as the bot counts a request's `tools`
   (TokenCounter.tools: their compact JSON, an upper bound of what OpenAI renders) with
   cl100k_base (gpt-4) and o200k_base (gpt-4o), per tool and for the array of all. Then
   the offer's reserve (schemas + TOOLS_RESULT_TOKENS, at most a quarter of what the
   window leaves) for a 128k-window model, from the real ToolService.

2. Time per tool round. The real dispatcher (create_dispatcher, polling, SQLite, the
   production stream interval) runs in this process against the tests' fake Telegram and
   fake OpenAI (tests/fakes, on 127.0.0.1; first-token latency 0, no token interval). The
   fake model answers a message after N rounds of one calculator call each (N = 0, 1, 3),
   its calls and answer decided from the request. Messages go one at a time, cycling over
   USERS users; each cycle sends the three kinds in a rotating order, so that the growing
   histories and the warm-up weigh on all alike.

   Counted per message: from pushing the update to the fake Telegram recording the call
   that delivered the final text, minus the fake model's own handling of each request
   (RequestRecord.at -> finished_at: from the request's arrival to the stream's end) and
   minus N times the calculator's own time (Tool.run, as ToolResult.seconds measures it:
   timed alone here, it is microseconds plus the hop to a thread). What remains is the
   bot: polling pick-up, middlewares, assembly, the OpenAI client sending each request
   and reading its stream, the tool preview shown per round (a Telegram call), fitting
   the results, recording each round's usage, and the final delivery. Also still in it:
   the fakes' HTTP parsing before `at` and their share of the CPU, as they run on the
   same event loop (the machine's other load too). Storing the answer runs beside its
   delivery (the two are gathered): only what of it runs before the final call lands is
   in the figure; the next message waits until it is all done, untimed.

   Per round = (net time of the N-round message - net time of the 0-round message of the
   same cycle, same user) / N; its p50 and p95 over the cycles. No target is set.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import os
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))  # `tests` is not installed into the venv, `app` is

from openai import AsyncOpenAI  # noqa: E402
from pydantic import SecretStr  # noqa: E402

from app.config import (  # noqa: E402
    AccessSettings,
    ChatSettings,
    DatabaseSettings,
    EmbeddingsSettings,
    MemorySettings,
    OpenAISettings,
    SearchSettings,
    Settings,
    TelegramSettings,
    ToolsSettings,
)
from app.domain.refs import PersonaRef  # noqa: E402
from app.domain.users import Preferences  # noqa: E402
from app.factory import create_web  # noqa: E402
from app.i18n import create_i18n  # noqa: E402
from app.memory.service import MemoryService  # noqa: E402
from app.memory.tokens import load_counter  # noqa: E402
from app.plugins.api import PluginContext  # noqa: E402
from app.plugins.images import plugin as images  # noqa: E402
from app.plugins.reminders import plugin as reminders  # noqa: E402
from app.services.jobs import JobScheduler  # noqa: E402
from app.services.tools import ToolService  # noqa: E402
from app.tools import builtin_tools  # noqa: E402
from app.tools.base import ToolContext  # noqa: E402
from app.tools.calculator import CALCULATOR  # noqa: E402
from app.tools.toolbox import Toolbox  # noqa: E402
from tests.conftest import _NAMES, _PREFIXES  # noqa: E402
from tests.fakes import FakeOpenAI, FakeTelegram  # noqa: E402
from tests.fakes.openai import RequestRecord, ToolCalls  # noqa: E402
from tests.harness import RunningBot  # noqa: E402

TOKEN = "123456:BENCH-token"
API_KEY = "bench-key"
MODEL = "test-model"
SEARXNG_URL = "http://127.0.0.1:9/"  # offers web_search; never called here
COUNT_MODELS = (("gpt-4", "cl100k_base"), ("gpt-4o", "o200k_base"))
WINDOW = 128_000
ROUNDS = (0, 1, 3)
USERS = 10
CYCLES = 100  # measured cycles: each sends one message of every kind in ROUNDS
WARMUP = 10
STREAM_INTERVAL = 1.0  # create_dispatcher's default, what `python -m app` runs with
ANSWER_TIMEOUT = 30.0
CALCULATOR_RUNS = 500
FIRST_USER = 5000
# Every request of the timed messages offers all of them, as in the schema count.
OFFERED = [
    "calculator",
    "cancel_reminder",
    "create_reminder",
    "current_datetime",
    "list_reminders",
    "read_page",
    "web_search",
]
FINAL_METHODS = frozenset({"sendMessage", "editMessageText"})


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    rank = (len(ordered) - 1) * q / 100
    low = int(rank)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


# --- 1. schema tokens ---------------------------------------------------------------------------


def openai_settings(model: str, base_url: str = "http://127.0.0.1:9/v1", **values: Any) -> Any:
    return OpenAISettings(
        api_key=SecretStr(API_KEY),
        base_url=base_url,
        model=model,
        tool_models=("*",),
        max_retries=0,
        _env_file=None,
        **values,
    )


async def schema_tokens() -> None:
    search = SearchSettings(searxng_url=SEARXNG_URL, _env_file=None)
    settings = Settings(
        telegram=TelegramSettings(bot_token=SecretStr(TOKEN), _env_file=None),
        openai=openai_settings(MODEL),
        search=search,
    )
    web = create_web(settings)
    # The reminders plugin's tools (the default PLUGINS), built as the bot builds them; its
    # scheduler is never started here.
    context = PluginContext(
        "reminders",
        AsyncOpenAI(api_key=API_KEY, base_url="http://127.0.0.1:9/v1"),
        create_i18n(),
        jobs=JobScheduler(None, clock=lambda: datetime.now(UTC)).for_plugin("reminders"),  # type: ignore[arg-type]
    )
    try:
        drawing = dataclasses.replace(context, name="images")
        tools = [
            *builtin_tools(),
            *web.tools,
            *reminders(context).tools,
            *images(drawing).tools,
        ]
        toolbox = Toolbox(tools)
        offered = toolbox.offered({"admin"})  # an admin is offered every tool
        schemas = [tool.schema() for tool in offered]
        counters = {model: load_counter(model) for model, _ in COUNT_MODELS}
        names = [tool.name for tool in offered]
        width = max(len(name) for name in [*names, "all (the tools array)"])
        print(
            "Schema tokens: the built-in tools, counted as a request's `tools` (TokenCounter.tools)"
        )
        heads = "".join(f"  {f'{m} ({e})':>22}" for m, e in COUNT_MODELS)
        print(f"  {'tool':<{width}}{heads}")
        for name, schema in zip(names, schemas, strict=True):
            cells = "".join(f"  {counters[m].tools([schema]):>22}" for m, _ in COUNT_MODELS)
            print(f"  {name:<{width}}{cells}")
        cells = "".join(f"  {counters[m].tools(schemas):>22}" for m, _ in COUNT_MODELS)
        print(f"  {'all (the tools array)':<{width}}{cells}")

        result_tokens = ToolsSettings(_env_file=None).result_tokens
        print(
            f"\nThe offer's reserve with a {WINDOW:,}-token window (TOOLS_RESULT_TOKENS = "
            f"{result_tokens:,}):"
        )
        for model, encoding in COUNT_MODELS:
            openai = openai_settings(model, context_window=WINDOW)
            memory = MemoryService(counters[model], openai, MemorySettings(_env_file=None))
            service = ToolService(toolbox, ToolsSettings(_env_file=None), openai, memory)
            preferences = Preferences(
                persona=PersonaRef(1, "Assistant"), model=model, temperature=0.7
            )
            offer = service.offer(preferences)
            if offer is None:
                print(f"  {model} ({encoding}): no tools offered")
                continue
            budget = memory.budget_for(model)
            print(
                f"  {model} ({encoding}): {offer.reserve:,} tokens = {offer.schema_tokens:,} "
                f"schemas + {offer.result_tokens:,} results; "
                f"{offer.reserve / budget.prompt_limit:.1%} of the {budget.prompt_limit:,} "
                "the window leaves the prompt"
            )
    finally:
        await web.close()


# --- 2. time per round ----------------------------------------------------------------------------


@dataclass(slots=True)
class Sample:
    rounds: int
    cycle: int
    total: float  # update pushed -> final text delivered
    model: float  # the fake model's own time on the message's requests
    tool: float  # the calculator's own time, N times
    requests: int

    @property
    def net(self) -> float:
        return self.total - self.model - self.tool


def tag_of(text: str) -> tuple[str, int]:
    """ "m17 r3: ..." -> ("m17", 3)."""
    head = text.split(":", 1)[0].split()
    return head[0], int(head[1][1:])


def last_user_text(body: dict[str, Any]) -> tuple[str, int]:
    """The last user message's text, and how many tool rounds came after it."""
    messages = body.get("messages") or []
    rounds = 0
    for message in reversed(messages):
        if message.get("role") == "user":
            content = message.get("content")
            return (content if isinstance(content, str) else str(content)), rounds
        if message.get("role") == "assistant" and message.get("tool_calls"):
            rounds += 1
    return "", rounds


def answer_text(tag: str) -> str:
    return f"Answer to {tag}: the sum is 2."


def fake_reply(body: dict[str, Any]) -> str | ToolCalls:
    text, done = last_user_text(body)
    try:
        tag, rounds = tag_of(text)
    except (IndexError, ValueError):
        return "Noted."  # not one of ours (a summary, say)
    if body.get("tools") and done < rounds:
        return ToolCalls((("calculator", {"expression": f"{done} + 1"}),))
    return answer_text(tag)


def bot_settings(telegram: FakeTelegram, llm: FakeOpenAI, database: Path) -> Settings:
    users = frozenset(range(FIRST_USER, FIRST_USER + USERS))
    return Settings(
        telegram=TelegramSettings(
            bot_token=SecretStr(TOKEN), api_url=telegram.base_url, _env_file=None
        ),
        openai=openai_settings(
            MODEL,
            base_url=llm.base_url,
            context_window=16_000,
            max_answer_tokens=500,
            timeout=10.0,
        ),
        database=DatabaseSettings(url=f"sqlite+aiosqlite:///{database}", _env_file=None),
        access=AccessSettings(allowed_user_ids=users, _env_file=None),
        chat=ChatSettings(_env_file=None),
        embeddings=EmbeddingsSettings(_env_file=None),
        # No titles and no profiles: each is a model request of its own, as in the tests.
        memory=MemorySettings(titles=False, profile=False, _env_file=None),
        tools=ToolsSettings(_env_file=None),
        search=SearchSettings(searxng_url=SEARXNG_URL, _env_file=None),
    )


async def calculator_seconds() -> float:
    """The calculator's own time for one call (median), as ToolResult.seconds measures it."""
    context = ToolContext(user_id=FIRST_USER, chat_id=FIRST_USER, timezone="UTC")
    times = []
    for i in range(CALCULATOR_RUNS):
        started = time.perf_counter()
        await CALCULATOR.run(context, {"expression": f"{i % 3} + 1"})
        times.append(time.perf_counter() - started)
    return statistics.median(times)


class Delivered:
    """The moment the fake Telegram recorded the final text of a message to a chat."""

    def __init__(self, telegram: FakeTelegram) -> None:
        self.telegram = telegram
        self.index = 0

    async def wait(self, chat_id: int, text: str) -> float:
        found: list[float] = []

        def done() -> bool:
            calls = self.telegram.calls
            while self.index < len(calls):
                call = calls[self.index]
                self.index += 1
                if (
                    call.method in FINAL_METHODS
                    and call.chat_id == chat_id
                    and call.params.get("text") == text
                ):
                    found.append(call.at)
            return bool(found)

        await self.telegram.wait_for(done, timeout=ANSWER_TIMEOUT, description=text)
        return found[0]


def tool_names(body: dict[str, Any]) -> list[str]:
    return sorted(tool["function"]["name"] for tool in body.get("tools") or ())


def model_seconds(records: list[RequestRecord], tag: str) -> tuple[float, int]:
    spent, count = 0.0, 0
    for record in records:
        text, _ = last_user_text(record.body)
        if not text.startswith(f"{tag} ") or record.finished_at is None:
            continue
        spent += record.finished_at - record.at
        count += 1
    return spent, count


async def time_rounds() -> tuple[list[Sample], float, float]:
    tool_seconds = await calculator_seconds()
    telegram = FakeTelegram(tokens={TOKEN})
    llm = FakeOpenAI(api_key=API_KEY, reply=fake_reply)
    await telegram.start()
    await llm.start()
    samples: list[Sample] = []
    started = time.perf_counter()
    try:
        with tempfile.TemporaryDirectory() as tmp:
            settings = bot_settings(telegram, llm, Path(tmp) / "bot.db")
            bot = await RunningBot(settings, telegram, stream_interval=STREAM_INTERVAL).start()
            try:
                delivered = Delivered(telegram)
                number = 0
                for cycle in range(WARMUP + CYCLES):
                    user = FIRST_USER + cycle % USERS
                    shift = cycle % len(ROUNDS)
                    for rounds in ROUNDS[shift:] + ROUNDS[:shift]:
                        number += 1
                        tag = f"m{number}"
                        first_record = len(llm.records)
                        sent = time.monotonic()
                        telegram.push_message(user, f"{tag} r{rounds}: what is 1 + 1?")
                        at = await delivered.wait(user, answer_text(tag))
                        await bot.idle()  # the turn stored: untimed
                        model, requests = model_seconds(llm.records[first_record:], tag)
                        if requests != rounds + 1:
                            raise RuntimeError(f"{tag}: {requests} requests, {rounds + 1} meant")
                        offered = tool_names(llm.records[first_record].body)
                        if offered != OFFERED:
                            raise RuntimeError(f"{tag}: offered {offered}, not {OFFERED}")
                        if cycle >= WARMUP:
                            samples.append(
                                Sample(
                                    rounds,
                                    cycle,
                                    at - sent,
                                    model,
                                    rounds * tool_seconds,
                                    requests,
                                )
                            )
            finally:
                await bot.stop()
    finally:
        await llm.stop()
        await telegram.stop()
    return samples, tool_seconds, time.perf_counter() - started


def report_rounds(samples: list[Sample], tool_seconds: float, wall: float) -> None:
    print(
        f"\nTime per tool round: {CYCLES} cycles of {len(ROUNDS)} messages (after {WARMUP} "
        f"warm-up cycles), {USERS} users in turn, one message at a time, SQLite, "
        f"stream interval {STREAM_INTERVAL:g} s, {len(OFFERED)} tools offered; {wall:.1f} s "
        "in all"
    )
    print(
        f"  calculator's own time per call (median of {CALCULATOR_RUNS}): "
        f"{tool_seconds * 1e6:.0f} µs"
    )
    print(
        f"  {'rounds':>6}  {'requests':>8}  {'total p50':>9}  {'model p50':>9}  "
        f"{'net p50':>8}  {'net p95':>8}"
    )
    by_rounds: dict[int, list[Sample]] = {n: [] for n in ROUNDS}
    for sample in samples:
        by_rounds[sample.rounds].append(sample)
    for rounds, group in by_rounds.items():
        totals = [s.total * 1000 for s in group]
        models = [s.model * 1000 for s in group]
        nets = [s.net * 1000 for s in group]
        print(
            f"  {rounds:>6}  {group[0].requests:>8}  {percentile(totals, 50):>7.1f}ms  "
            f"{percentile(models, 50):>7.1f}ms  {percentile(nets, 50):>6.1f}ms  "
            f"{percentile(nets, 95):>6.1f}ms"
        )
    base = {s.cycle: s.net for s in by_rounds[0]}
    print("  the bot's added time per round, (net(N) - net(0) of the same cycle) / N:")
    for rounds in ROUNDS:
        if rounds == 0:
            continue
        per_round = [(s.net - base[s.cycle]) / rounds * 1000 for s in by_rounds[rounds]]
        print(
            f"    N = {rounds}: p50 {percentile(per_round, 50):.1f} ms, "
            f"p95 {percentile(per_round, 95):.1f} ms, mean {statistics.fmean(per_round):.1f} ms "
            f"({len(per_round)} pairs)"
        )


async def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0] if __doc__ else None)
    parser.parse_args()
    for name in list(os.environ):
        # The variables the tests clear: none of the shell's settings leak into the bench.
        if name.startswith(_PREFIXES) or name in _NAMES:
            del os.environ[name]
    await schema_tokens()
    samples, tool_seconds, wall = await time_rounds()
    report_rounds(samples, tool_seconds, wall)
    return 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
