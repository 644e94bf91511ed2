"""End to end: the rolling summary, recall, memory modes, /memory and /forget."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.config import MemorySettings, Settings
from app.db.models import Conversation, Message
from app.factory import resources_of
from app.memory.context import SUMMARY_HEADING
from tests.fakes import FakeOpenAI, FakeTelegram
from tests.harness import ALLOWED, RunningBot, StartBot, UserChat

FILLER = "and then we talked about the weather, the trains and the long weekend plans " * 4
SUMMARY = "The user plants tomatoes and keeps a diary."


def memory_settings(**values: Any) -> MemorySettings:
    defaults: dict[str, Any] = {
        "summary_share": 0.3,
        "recall_share": 0.15,
        "summary_min_tokens": 50,
        "summary_max_tokens": 120,
        "summary_retry_seconds": 0,
        "summary_model": "cheap-model",
        "titles": False,
        "profile": False,  # its requests are not summaries (tests/e2e/test_profile.py)
    }
    return MemorySettings(**{**defaults, **values}, _env_file=None)


def small_window(make_settings: Callable[..., Settings], **memory: Any) -> Settings:
    return make_settings(
        context_window=1_200,
        max_answer_tokens=150,
        safety_margin_tokens=0,
        memory=memory_settings(**memory),
    )


def is_summary_request(body: dict[str, Any]) -> bool:
    return not body.get("stream")


def chat_requests(llm: FakeOpenAI) -> list[dict[str, Any]]:
    return [body for body in llm.requests if not is_summary_request(body)]


def summary_requests(llm: FakeOpenAI) -> list[dict[str, Any]]:
    return [body for body in llm.requests if is_summary_request(body)]


async def summaries_done(bot: RunningBot, timeout: float = 10.0) -> None:
    assert bot.dp is not None
    summarizer = resources_of(bot.dp).summarizer
    assert await summarizer.drain(timeout) == 0  # none left running


async def talk(user: UserChat, bot: RunningBot, count: int, start: int = 0) -> None:
    for i in range(start, start + count):
        await user.send(f"note {i}: {FILLER}")
        await summaries_done(bot)


async def stored_count(db: async_sessionmaker[AsyncSession]) -> int:
    async with db() as session:
        return await session.scalar(select(func.count()).select_from(Message)) or 0


async def summary_row(db: async_sessionmaker[AsyncSession]) -> tuple[str | None, int | None]:
    async with db() as session:
        row = (
            await session.execute(
                select(Conversation.summary, Conversation.summary_until_id)
                .where(Conversation.user_id == ALLOWED)
                .order_by(Conversation.id.desc())
                .limit(1)
            )
        ).first()
    return (None, None) if row is None else (row[0], row[1])


async def test_a_long_conversation_is_summarised_after_answers_and_the_summary_is_sent(
    start_bot: StartBot,
    make_settings: Callable[..., Settings],
    telegram: FakeTelegram,
    llm: FakeOpenAI,
    db: async_sessionmaker[AsyncSession],
) -> None:
    delivered_when_summarising: list[tuple[int, int]] = []

    def reply(body: dict[str, Any]) -> str:
        if is_summary_request(body):
            answered = len(telegram.sent_messages(ALLOWED))
            delivered_when_summarising.append((answered, len(chat_requests(llm))))
            return SUMMARY
        return "Noted."

    llm.reply = reply
    bot = await start_bot(small_window(make_settings))
    user = UserChat(bot, telegram, ALLOWED)
    await talk(user, bot, 16)

    assert summary_requests(llm), "the conversation outgrew the window but was not summarised"
    # Every summary call came after the answer to the message that caused it was sent.
    assert all(sent == asked for sent, asked in delivered_when_summarising)
    assert {body["model"] for body in summary_requests(llm)} == {"cheap-model"}
    summary, until_id = await summary_row(db)
    assert summary is not None and SUMMARY in summary and until_id is not None
    assert await stored_count(db) == 32  # nothing was dropped

    await user.send("what do I grow?")
    sent = chat_requests(llm)[-1]["messages"]
    assert sent[1]["role"] == "system"
    assert sent[1]["content"].startswith(SUMMARY_HEADING) and SUMMARY in sent[1]["content"]
    assert llm.context_errors == 0


async def test_a_failing_summariser_loses_nothing_and_is_tried_again_later(
    start_bot: StartBot,
    make_settings: Callable[..., Settings],
    telegram: FakeTelegram,
    llm: FakeOpenAI,
    db: async_sessionmaker[AsyncSession],
) -> None:
    # The cheap model does not exist yet: every summary call fails with 404.
    llm.strict_models = True
    llm.models = ["test-model"]
    llm.reply = lambda body: SUMMARY if is_summary_request(body) else "Noted."
    bot = await start_bot(small_window(make_settings))
    user = UserChat(bot, telegram, ALLOWED)
    await talk(user, bot, 14)

    failed = summary_requests(llm)
    assert failed and all(r.status == 404 for r in llm.records if is_summary_request(r.body))
    assert all(m.text == "Noted." for m in user.messages)  # answers never suffered
    assert await summary_row(db) == (None, None)
    assert await stored_count(db) == 28

    llm.models = ["test-model", "cheap-model"]
    await talk(user, bot, 1, start=14)
    summary, until_id = await summary_row(db)
    assert summary is not None and SUMMARY in summary and until_id is not None
    assert await stored_count(db) == 30


async def test_recall_brings_back_an_old_planted_fact(
    start_bot: StartBot,
    make_settings: Callable[..., Settings],
    telegram: FakeTelegram,
    llm: FakeOpenAI,
) -> None:
    llm.reply = "Noted."
    fact = "By the way, my dentist is Dr Quillfeather on Bramble Street."
    bot = await start_bot(small_window(make_settings, summary_share=0))
    user = UserChat(bot, telegram, ALLOWED)
    await user.send(fact)
    await talk(user, bot, 16)
    await user.send("Which street was my dentist on, again?")
    contents = [m["content"] for m in llm.requests[-1]["messages"]]
    assert fact in contents
    assert contents.count(fact) == 1
    # It is recalled, not recent: the turns right after it are not in the request.
    assert not any(c.startswith("note 0:") for c in contents)


async def test_forget_deletes_the_conversation_and_its_summary_for_good(
    start_bot: StartBot,
    make_settings: Callable[..., Settings],
    telegram: FakeTelegram,
    llm: FakeOpenAI,
    db: async_sessionmaker[AsyncSession],
) -> None:
    llm.reply = lambda body: SUMMARY if is_summary_request(body) else "Noted."
    bot = await start_bot(small_window(make_settings))
    user = UserChat(bot, telegram, ALLOWED)
    await user.send("My dentist is Dr Quillfeather.")
    await talk(user, bot, 14)
    assert (await summary_row(db))[0] is not None

    question = await user.send("/forget")
    assert "for good" in question.text
    delete = user.button_data(question, "Delete for good")
    await user.press("Keep it")
    assert "Nothing was deleted" in user.last.text
    assert await stored_count(db) == 30
    await user.send("/forget")
    await user.press("Delete for good")
    assert "Deleted" in user.last.text
    assert await stored_count(db) == 0
    assert await summary_row(db) == (None, None)

    await user.send("Who is my dentist?")
    contents = [m["content"] for m in chat_requests(llm)[-1]["messages"]]
    assert not any("Quillfeather" in c or SUMMARY in c for c in contents)
    # A button of an earlier question names a conversation that is gone.
    assert await user.press_data(delete, question.message_id) == (
        "This button no longer works: its menu was closed or replaced."
    )
    assert await stored_count(db) == 2


async def test_memory_shows_the_parts_against_the_budget_and_the_summary(
    start_bot: StartBot,
    make_settings: Callable[..., Settings],
    telegram: FakeTelegram,
    llm: FakeOpenAI,
) -> None:
    llm.reply = lambda body: SUMMARY if is_summary_request(body) else "Noted."
    bot = await start_bot(small_window(make_settings))
    user = UserChat(bot, telegram, ALLOWED)
    await talk(user, bot, 14)
    report = (await user.send("/memory")).text
    for part in ("persona memory", "summary", "recalled messages", "recent messages"):
        assert part in report
    assert "of 1,050 tokens" in report  # the window less the answer reserve
    assert SUMMARY in report


@pytest.mark.parametrize(("mode", "reserve"), [("Chat", 150), ("Task", 600)])
async def test_mode_sets_the_answer_reserve_of_the_next_requests(
    start_bot: StartBot,
    make_settings: Callable[..., Settings],
    telegram: FakeTelegram,
    llm: FakeOpenAI,
    mode: str,
    reserve: int,
) -> None:
    bot = await start_bot(small_window(make_settings, task_answer_tokens=4_096))
    user = UserChat(bot, telegram, ALLOWED)
    assert "Memory mode" in (await user.send("/mode")).text
    await user.press(mode)
    assert mode in user.last.text
    await user.send("hello")
    body = chat_requests(llm)[-1]
    assert body.get("max_tokens", body.get("max_completion_tokens")) == reserve
