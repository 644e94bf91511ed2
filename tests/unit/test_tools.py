"""Tools as pure logic (issue 15): the calculator, the toolbox's refusals and time limits,
tool calls read from stream pieces, results fitted to their share, time zones typed."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from app.config import OpenAISettings, ToolsSettings
from app.domain.rights import Right
from app.domain.tools import ToolCall, ToolResult
from app.llm.chat import StreamReport
from app.memory.service import MemoryService
from app.memory.tokens import load_counter
from app.services.preferences import SettingInvalid, parse_timezone
from app.services.tools import SHORTENED, ToolService
from app.tools.base import Tool, ToolContext, ToolError
from app.tools.calculator import evaluate
from app.tools.models import calls_tools
from app.tools.toolbox import Toolbox

CONTEXT = ToolContext(user_id=1, chat_id=1)


# --- the calculator ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("expression", "value"),
    [
        ("17 * 23", "391"),
        ("2^10", "1024"),
        ("(1 + 2) * 3 / 4", "2.25"),
        ("0.1 + 0.2", "0.3"),
        ("sqrt(2)", "1.41421356237"),
        ("factorial(20)", "2432902008176640000"),
        ("10 // 3 + 10 % 3", "4"),
        ("round(pi, 3)", "3.142"),
    ],
)
def test_the_calculator_computes(expression: str, value: str) -> None:
    assert evaluate(expression).endswith(f"= {value}")


@pytest.mark.parametrize(
    ("expression", "why"),
    [
        ('__import__("os").system("true")', "not an arithmetic expression"),
        ("(1).__class__", "not an arithmetic expression"),
        ("open('/etc/passwd')", "not an arithmetic expression"),
        ("x + 1", "not an arithmetic expression"),
        ("1 / 0", "division by zero"),
        ("9 ** 9 ** 9", "too large"),
        ("(2 ** 9999) ** 9999", "too large"),
        ("factorial(100000)", "up to 999!"),
        ("9999 ** 9999", "too many digits"),
        ("'a' * 10", "no numeric value"),
        ("1 +", "cannot be computed"),
        ("", "empty"),
        ("1+" * 300 + "1", "longer than"),
    ],
)
def test_the_calculator_refuses_what_is_not_arithmetic_or_too_big(
    expression: str, why: str
) -> None:
    with pytest.raises(ToolError, match=why):
        evaluate(expression)


# --- the toolbox ------------------------------------------------------------------------


def _tool(name: str, run: Any, right: str | None = None) -> Tool:
    return Tool(name, "test", {"type": "object", "properties": {}}, run, right=right)


async def _echo(context: ToolContext, arguments: dict[str, Any]) -> str:
    return json.dumps(arguments)


async def test_a_tool_behind_a_right_is_neither_offered_nor_run_without_it() -> None:
    box = Toolbox([_tool("open", _echo), _tool("secret", _echo, right="web")])
    assert [t.name for t in box.offered(set())] == ["open"]
    assert [t.name for t in box.offered({"web"})] == ["open", "secret"]
    assert box.rights == {"web"}
    (result,) = await box.run(CONTEXT, [ToolCall("c1", "secret", "{}")], rights=set())
    assert not result.ok and "may not use" in result.content


async def test_admins_are_offered_and_may_run_every_tool() -> None:
    box = Toolbox([_tool("open", _echo), _tool("secret", _echo, right="mcp_files")])
    assert [t.name for t in box.offered({Right.ADMIN})] == ["open", "secret"]
    (result,) = await box.run(CONTEXT, [ToolCall("c1", "secret", "{}")], rights={Right.ADMIN})
    assert result.ok


async def test_the_calls_of_a_round_run_at_once_and_keep_their_order() -> None:
    started: list[str] = []

    async def slow(context: ToolContext, arguments: dict[str, Any]) -> str:
        started.append(arguments["n"])
        await asyncio.sleep(0.2)
        return arguments["n"]

    box = Toolbox([_tool("slow", slow)])
    calls = [ToolCall(f"c{n}", "slow", json.dumps({"n": str(n)})) for n in range(5)]
    loop = asyncio.get_running_loop()
    began = loop.time()
    results = await box.run(CONTEXT, calls, rights=set())
    assert loop.time() - began < 0.6  # five calls of 0.2 s, not one after another
    assert [r.content for r in results] == ["0", "1", "2", "3", "4"]
    assert [r.call_id for r in results] == [c.id for c in calls]


async def test_a_slow_or_broken_tool_becomes_an_error_result() -> None:
    async def hangs(context: ToolContext, arguments: dict[str, Any]) -> str:
        await asyncio.sleep(10)
        return "never"

    async def breaks(context: ToolContext, arguments: dict[str, Any]) -> str:
        raise RuntimeError("secret user text")

    box = Toolbox([_tool("hangs", hangs), _tool("breaks", breaks)], timeout=0.1)
    hung, broke = await box.run(
        CONTEXT, [ToolCall("a", "hangs", ""), ToolCall("b", "breaks", "{}")], rights=set()
    )
    assert not hung.ok and "did not answer within" in hung.content
    assert not broke.ok and "failed" in broke.content
    assert "secret user text" not in broke.content


def test_a_tool_name_the_api_refuses_is_refused_here() -> None:
    with pytest.raises(ValueError, match="must match"):
        _tool("web search", _echo)
    with pytest.raises(ValueError, match="two tools"):
        Toolbox([_tool("a", _echo), _tool("a", _echo)])


# --- calls read from a stream -----------------------------------------------------------


def test_tool_calls_are_assembled_from_their_pieces_by_index() -> None:
    report = StreamReport()
    pieces = [
        [{"index": 0, "id": "call_a", "type": "function", "function": {"name": "calc"}}],
        [{"index": 0, "function": {"arguments": '{"expr'}}],
        [{"index": 1, "id": "call_b", "function": {"name": "now", "arguments": ""}}],
        [{"index": 0, "function": {"arguments": 'ession": "1+1"}'}}],
        [{"index": 1, "function": {"arguments": "{}"}}],
    ]
    for piece in pieces:
        report.add_tool_pieces(piece)
    assert report.tool_calls == [
        ToolCall("call_a", "calc", '{"expression": "1+1"}'),
        ToolCall("call_b", "now", "{}"),
    ]


def test_whole_calls_without_an_index_each_count_once() -> None:
    """Ollama sends each call whole, its arguments already an object, with no index."""
    report = StreamReport()
    report.add_tool_pieces([{"function": {"name": "calc", "arguments": {"expression": "2"}}}])
    report.add_tool_pieces([{"function": {"name": "now", "arguments": {}}}])
    assert [(c.name, json.loads(c.arguments)) for c in report.tool_calls] == [
        ("calc", {"expression": "2"}),
        ("now", {}),
    ]
    assert len({c.id for c in report.tool_calls}) == 2


# --- results fitted to their share ------------------------------------------------------


def _service() -> ToolService:
    openai = OpenAISettings(api_key="k", model="test-model", _env_file=None)  # type: ignore[arg-type]
    memory = MemoryService(load_counter("test-model"), openai, _memory_settings())
    return ToolService(Toolbox(), ToolsSettings(_env_file=None), openai, memory)


def _memory_settings() -> Any:
    from app.config import MemorySettings

    return MemorySettings(_env_file=None)


@given(
    sizes=st.lists(st.integers(min_value=0, max_value=3000), min_size=1, max_size=4),
    room=st.integers(min_value=160, max_value=4000),
)
def test_results_together_never_exceed_their_room_and_say_when_cut(
    sizes: list[int], room: int
) -> None:
    service = _service()
    counter = service.counter
    results = [ToolResult(f"c{i}", "t", "word " * size) for i, size in enumerate(sizes)]
    fitted = service._fit(results, room)
    assert sum(counter.text(r.content) for r in fitted) <= room
    for before, after in zip(results, fitted, strict=True):
        if counter.text(before.content) <= room // len(results):
            assert after.content == before.content  # a result within its share is whole
        if after.content != before.content:
            assert "[The result was shortened to fit" in after.content


def test_a_short_result_leaves_its_share_to_a_long_one() -> None:
    service = _service()
    short = ToolResult("a", "t", "tiny")
    long = ToolResult("b", "t", "word " * 1000)
    kept_short, kept_long = service._fit([short, long], 600)
    assert kept_short.content == "tiny"
    assert service.counter.text(kept_long.content) > 500
    assert SHORTENED.split("{")[0] in kept_long.content


# --- which models, which zones ----------------------------------------------------------


@pytest.mark.parametrize(
    ("model", "calls"),
    [
        ("gpt-4o", True),
        ("gpt-4o-mini-2024-07-18", True),
        ("gpt-4o-audio-preview", False),
        ("o1-mini", False),
        ("o3-mini", True),
        ("qwen3:8b", True),
        ("llama3.1:70b", True),
        ("llama2", False),
        ("gemma:2b", False),
    ],
)
def test_known_tool_models(model: str, calls: bool) -> None:
    assert calls_tools(model) is calls


def test_owner_named_tool_models() -> None:
    assert calls_tools("gemma3:4b", ("gemma3*",))
    assert calls_tools("anything", ("*",))
    assert not calls_tools("gemma3:4b", ("gemma3",))


@pytest.mark.parametrize(
    ("typed", "zone"),
    [
        ("Berlin", "Europe/Berlin"),
        ("new york", "America/New_York"),
        ("Europe/Moscow", "Europe/Moscow"),
        ("Москва", "Europe/Moscow"),
        ("utc", "UTC"),
        ("UTC+3", "Etc/GMT-3"),
        ("-5", "Etc/GMT+5"),
        ("GMT+0", "UTC"),
    ],
)
def test_a_typed_time_zone(typed: str, zone: str) -> None:
    assert parse_timezone(typed) == zone


@pytest.mark.parametrize("typed", ["Atlantis", "UTC+15", "+5:30", "", "../../etc"])
def test_a_typed_time_zone_that_is_none(typed: str) -> None:
    with pytest.raises(SettingInvalid):
        parse_timezone(typed)


async def test_a_tools_own_time_limit_overrides_the_toolboxs() -> None:
    async def slow(context: ToolContext, arguments: dict[str, Any]) -> str:
        await asyncio.sleep(0.3)
        return "done"

    patient = Tool("patient", "x", {"type": "object"}, slow, timeout=5.0)
    hasty = Tool("hasty", "x", {"type": "object"}, slow, timeout=0.05)
    box = Toolbox([patient, hasty], timeout=0.1)
    done, cut = await box.run(
        CONTEXT, [ToolCall("a", "patient", "{}"), ToolCall("b", "hasty", "{}")], rights=set()
    )
    assert done.ok and done.content == "done"
    assert not cut.ok and "did not answer within" in cut.content
