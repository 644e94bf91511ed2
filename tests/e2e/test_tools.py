"""End to end: the model calls the bot's tools (issue 15). The fake model streams its calls
as OpenAI does (ids and names first, the arguments in pieces), the bot runs them and asks
again with the results, and the answer is shown and stored with its rounds."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.config import Settings, ToolsSettings
from app.db.models import Message, Usage
from app.domain.enums import MessageRole
from app.memory.tokens import load_counter
from tests.fakes import FakeOpenAI, FakeTelegram
from tests.fakes.openai import ToolCalls
from tests.harness import ALLOWED, StartBot, UserChat

NOON = datetime(2026, 12, 1, 11, 0, tzinfo=UTC)


def tool_settings(make_settings: Callable[..., Settings], **tools: Any) -> Settings:
    """The test model offered tools (it is no known tool model), with these TOOLS_ values."""
    settings = make_settings(tool_models=("test-model",))
    return dataclasses.replace(settings, tools=ToolsSettings(**tools, _env_file=None))


def tool_messages(body: dict[str, Any]) -> list[dict[str, Any]]:
    return [m for m in body["messages"] if m.get("role") == "tool"]


def tool_names(body: dict[str, Any]) -> list[str]:
    return [tool["function"]["name"] for tool in body.get("tools") or ()]


async def answers(db: async_sessionmaker[AsyncSession]) -> list[Message]:
    async with db() as session:
        rows = await session.scalars(
            select(Message).where(Message.role == MessageRole.ASSISTANT).order_by(Message.id)
        )
        return list(rows)


async def test_a_tool_round_trip_shows_the_answer_and_keeps_the_round(
    start_bot: StartBot,
    make_settings: Callable[..., Settings],
    telegram: FakeTelegram,
    llm: FakeOpenAI,
    db: async_sessionmaker[AsyncSession],
) -> None:
    bot = await start_bot(tool_settings(make_settings))
    chat = UserChat(bot, telegram, ALLOWED)
    llm.argument_chunk = 3  # the arguments arrive in many pieces
    llm.queue_tool_calls(("calculator", {"expression": "17 * 23"}), text="Let me compute.")
    llm.queue_reply("17 times 23 is 391.")

    answer = await chat.send("What is 17 times 23?")

    assert answer.text == "17 times 23 is 391."
    first, second = llm.requests
    assert tool_names(first) == ["calculator", "current_datetime", "read_page"]
    # The second request: the question, the model's call, the tool's result.
    asked = second["messages"][-2]
    assert asked["role"] == "assistant" and asked["content"] == "Let me compute."
    call = asked["tool_calls"][0]
    assert call["function"] == {"name": "calculator", "arguments": '{"expression": "17 * 23"}'}
    (result,) = tool_messages(second)
    assert result == {"role": "tool", "tool_call_id": call["id"], "content": "17 * 23 = 391"}
    assert llm.records[0].tool_calls[0]["id"] == call["id"]  # the id the fake streamed
    # While the tool ran, the preview said what it was doing.
    previews = [d.text for d in telegram.drafts(ALLOWED)]
    assert any("🔧 Calculating: 17 * 23" in (text or "") for text in previews), previews

    # Stored with the answer, counted with it; a follow-up is sent the round again.
    (stored,) = await answers(db)
    assert stored.content == "17 times 23 is 391."
    trace = json.loads(stored.tool_trace or "[]")
    assert [m["role"] for m in trace] == ["assistant", "tool"]
    llm.queue_reply("And doubled, 782.")
    await chat.send("And doubled?")
    follow_up = llm.requests[-1]["messages"]
    roles = [m["role"] for m in follow_up[1:]]
    assert roles == ["user", "assistant", "tool", "assistant", "user"]
    assert follow_up[3]["content"] == "17 * 23 = 391"


async def test_our_counts_of_tools_and_rounds_are_the_servers(
    start_bot: StartBot,
    make_settings: Callable[..., Settings],
    telegram: FakeTelegram,
    llm: FakeOpenAI,
    db: async_sessionmaker[AsyncSession],
) -> None:
    """With a server that reports no usage, what is recorded is our own count of each
    request: it must be what the server counted (schemas, calls and results included)."""
    llm.report_usage = False
    bot = await start_bot(tool_settings(make_settings))
    chat = UserChat(bot, telegram, ALLOWED)
    llm.queue_tool_calls(
        ("calculator", {"expression": "2 ** 10"}), ("current_datetime", {}), text=""
    )
    llm.queue_tool_calls(("calculator", {"expression": "1024 / 4"}))
    llm.queue_reply("256, and it is Tuesday.")
    await chat.send("Quarter of 2^10, and what day is it?")
    assert len(llm.requests) == 3
    llm.queue_reply("You are welcome.")
    await chat.send("Thanks")
    async with db() as session:
        (usage,) = await session.scalars(select(Usage).where(Usage.user_id == ALLOWED))
    assert usage.requests == 4
    assert usage.prompt_tokens == sum(llm.prompt_tokens)
    assert usage.completion_tokens == sum(r.completion_tokens for r in llm.records)


async def test_several_calls_of_one_round_all_get_results_in_order(
    start_bot: StartBot,
    make_settings: Callable[..., Settings],
    telegram: FakeTelegram,
    llm: FakeOpenAI,
) -> None:
    bot = await start_bot(
        tool_settings(make_settings, default_timezone="Europe/Berlin"), clock=lambda: NOON
    )
    chat = UserChat(bot, telegram, ALLOWED)
    llm.queue_tool_calls(("current_datetime", {}), ("calculator", {"expression": "sqrt(144)"}))
    llm.queue_reply("Noon, and 12.")
    assert (await chat.send("Time, and the root of 144?")).text == "Noon, and 12."
    clock, root = tool_messages(llm.requests[1])
    # The user's time zone (DEFAULT_TIMEZONE here): 11:00 UTC is noon in Berlin.
    assert clock["content"].startswith("Tuesday, 01 December 2026, 12:00 (Europe/Berlin")
    assert root["content"] == "sqrt(144) = 12"


async def test_the_rounds_end_at_the_limit_and_the_model_answers(
    start_bot: StartBot,
    make_settings: Callable[..., Settings],
    telegram: FakeTelegram,
    llm: FakeOpenAI,
) -> None:
    # A model that would call tools for ever.
    llm.reply = lambda body: ToolCalls((("calculator", {"expression": "1 + 1"}),), "")
    bot = await start_bot(tool_settings(make_settings, max_rounds=2))
    chat = UserChat(bot, telegram, ALLOWED)
    answer = await chat.send("Add forever")
    assert len(llm.requests) == 3
    assert [r.get("tool_choice") for r in llm.requests] == [None, None, "none"]
    assert len(tool_messages(llm.requests[-1])) == 2
    assert answer.text == "I answer with what I have."


async def test_a_failing_call_and_a_made_up_tool_are_told_to_the_model(
    start_bot: StartBot,
    make_settings: Callable[..., Settings],
    telegram: FakeTelegram,
    llm: FakeOpenAI,
    db: async_sessionmaker[AsyncSession],
) -> None:
    bot = await start_bot(tool_settings(make_settings))
    chat = UserChat(bot, telegram, ALLOWED)
    llm.queue_tool_calls(
        ("calculator", {"expression": "1 / 0"}),
        ("web_search", {"query": "cats"}),  # no such tool: the model made it up
        ("calculator", '{"expression": "2 +'),  # arguments cut short
    )
    llm.queue_reply("I could not do that.")
    assert (await chat.send("Divide by zero")).text == "I could not do that."
    results = [m["content"] for m in tool_messages(llm.requests[1])]
    assert results == [
        "Error: division by zero.",
        "Error: there is no tool named 'web_search'; the tools are: calculator, "
        "current_datetime, read_page.",
        "Error: the arguments are not a JSON object; call the tool again with one.",
    ]
    (stored,) = await answers(db)
    assert stored.content == "I could not do that."


async def test_a_server_that_refuses_tools_is_asked_without_them_from_then_on(
    start_bot: StartBot,
    make_settings: Callable[..., Settings],
    telegram: FakeTelegram,
    llm: FakeOpenAI,
) -> None:
    llm.refuse_tools = True
    bot = await start_bot(tool_settings(make_settings))
    chat = UserChat(bot, telegram, ALLOWED)
    llm.queue_reply("Hello without tools.")
    assert (await chat.send("Hello")).text == "Hello without tools."
    assert [bool(r.get("tools")) for r in llm.requests] == [True, False]
    assert [r.status for r in llm.records] == [400, 200]
    llm.queue_reply("Still here.")
    assert (await chat.send("Again")).text == "Still here."
    assert len(llm.requests) == 3 and "tools" not in llm.requests[-1]


async def test_a_model_not_known_to_call_tools_is_offered_none(
    start_bot: StartBot, telegram: FakeTelegram, llm: FakeOpenAI
) -> None:
    bot = await start_bot()  # test-model, not in OPENAI_TOOL_MODELS
    chat = UserChat(bot, telegram, ALLOWED)
    await chat.send("Hello")
    assert "tools" not in llm.requests[0]


async def test_tools_off_offers_none(
    start_bot: StartBot,
    make_settings: Callable[..., Settings],
    telegram: FakeTelegram,
    llm: FakeOpenAI,
) -> None:
    bot = await start_bot(tool_settings(make_settings, enabled=False))
    chat = UserChat(bot, telegram, ALLOWED)
    await chat.send("Hello")
    assert "tools" not in llm.requests[0]


async def test_the_date_and_time_are_told_in_the_zone_the_user_chose(
    start_bot: StartBot,
    make_settings: Callable[..., Settings],
    telegram: FakeTelegram,
    llm: FakeOpenAI,
) -> None:
    bot = await start_bot(tool_settings(make_settings), clock=lambda: NOON)
    chat = UserChat(bot, telegram, ALLOWED)
    await chat.send("/settings")
    await chat.press("Time zone")
    await chat.press("Type a city")
    await chat.send("Tokyo")
    llm.queue_tool_calls(("current_datetime", {}))
    llm.queue_reply("It is 8 in the evening.")
    await chat.send("What time is it?")
    (clock,) = tool_messages(llm.requests[-1])
    assert clock["content"].startswith("Tuesday, 01 December 2026, 20:00 (Asia/Tokyo, UTC+0900)")


@pytest.mark.parametrize("enabled", [True, False], ids=["tools", "no-tools"])
async def test_memory_shows_the_room_kept_for_the_tools(
    start_bot: StartBot,
    make_settings: Callable[..., Settings],
    telegram: FakeTelegram,
    llm: FakeOpenAI,
    enabled: bool,
) -> None:
    """/memory builds the request /retry would send: with tools offered, their room (the
    schemas and TOOLS_RESULT_TOKENS) is kept out of the conversation there too, and said;
    without, not a word of tools."""
    bot = await start_bot(tool_settings(make_settings, result_tokens=1_000, enabled=enabled))
    chat = UserChat(bot, telegram, ALLOWED)
    await chat.send("hello")
    report = (await chat.send("/memory")).text or ""
    if not enabled:
        assert "tools" not in llm.requests[-1]
        assert "Kept for the tools" not in report
        return
    reserve = load_counter("test-model").tools(llm.requests[-1]["tools"]) + 1_000
    assert f"Kept for the tools (their descriptions, calls and results): {reserve:,}" in report
