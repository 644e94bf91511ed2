"""End to end: model streams that break, end early, hit a limit, are stopped by the user or
reason aloud, through the real polling loop against the fake Telegram and OpenAI servers.
Each case checks what the user sees, what is stored and what the model was sent."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.config import Settings
from app.db.models import Message, Usage
from app.llm.chat import ThinkSplitter
from tests.fakes import FakeOpenAI, FakeTelegram
from tests.fakes.telegram import SentMessage
from tests.harness import ALLOWED, RunningBot, StartBot, UserChat

Db = async_sessionmaker[AsyncSession]
REPLY = "alpha beta gamma delta epsilon zeta eta theta"


async def stored(db: Db) -> list[tuple[str, str]]:
    async with db() as session:
        rows = await session.execute(
            select(Message.role, Message.content)
            .where(Message.user_id == ALLOWED)
            .order_by(Message.id)
        )
        return [(role.value, content) for role, content in rows]


async def requests_made(db: Db) -> int:
    async with db() as session:
        return sum((await session.scalars(select(Usage.requests))).all())


def no_traceback(caplog: pytest.LogCaptureFixture) -> None:
    assert not [r for r in caplog.records if r.exc_info], "a traceback was logged"


# --- broken streams heal --------------------------------------------------------------------


@pytest.mark.parametrize(
    "breaks",
    [
        pytest.param(lambda llm: llm.cut_stream_next(after_chunks=4), id="connection-dropped"),
        pytest.param(lambda llm: llm.end_stream_next(after_chunks=4), id="ended-without-finish"),
        pytest.param(
            lambda llm: llm.end_stream_next(after_chunks=4, done=False), id="ended-without-done"
        ),
    ],
)
async def test_a_broken_stream_is_asked_again_and_one_complete_answer_is_shown_and_stored(
    breaks: object,
    start_bot: StartBot,
    telegram: FakeTelegram,
    llm: FakeOpenAI,
    db: Db,
    caplog: pytest.LogCaptureFixture,
) -> None:
    llm.reply = REPLY
    bot = await start_bot()
    breaks(llm)  # type: ignore[operator]
    answer = await UserChat(bot, telegram, ALLOWED).send("greek letters")
    assert answer.plain_text == REPLY
    assert len(telegram.sent_messages(ALLOWED)) == 1  # one answer, not a half and a whole
    assert await stored(db) == [("user", "greek letters"), ("assistant", REPLY)]
    assert len(llm.records) == 2
    assert await requests_made(db) == 2  # the broken attempt was paid for too
    no_traceback(caplog)


async def test_retries_run_out_then_the_part_that_arrived_is_shown_with_a_note(
    start_bot: StartBot, telegram: FakeTelegram, llm: FakeOpenAI, db: Db
) -> None:
    llm.reply = REPLY
    bot = await start_bot()
    llm.end_stream_next(after_chunks=4, times=3)
    answer = await UserChat(bot, telegram, ALLOWED).send("greek letters")
    assert (answer.plain_text or "").startswith("alpha beta gamma")
    assert "cut off" in (answer.plain_text or "")
    assert await stored(db) == [("user", "greek letters")]
    assert len(llm.records) == 3  # OPENAI_STREAM_RETRIES=2 by default


async def test_the_answer_arrives_when_the_user_deleted_its_preview_message(
    start_bot: StartBot, telegram: FakeTelegram, llm: FakeOpenAI, db: Db
) -> None:
    telegram.refuse_drafts = True  # previews by editing one message
    llm.reply = REPLY
    llm.token_interval = 0.05
    bot = await start_bot(stream_interval=60.0)  # one preview, then only the final edit
    telegram.push_message(ALLOWED, "greek letters")
    preview = (await telegram.wait_for(lambda: telegram.sent_messages(ALLOWED), timeout=10))[0]
    telegram.delete_by_user(ALLOWED, preview.message_id)
    await bot.idle()
    shown = [m for m in telegram.sent_messages(ALLOWED) if not m.deleted]
    assert [m.plain_text for m in shown] == [REPLY]
    assert await stored(db) == [("user", "greek letters"), ("assistant", REPLY)]


# --- limits and filters ---------------------------------------------------------------------


@pytest.fixture
async def cut_answer(
    start_bot: StartBot,
    make_settings: Callable[..., Settings],
    telegram: FakeTelegram,
    llm: FakeOpenAI,
) -> tuple[UserChat, SentMessage]:
    """A user whose first answer stopped at the length limit (16 tokens), and that answer."""
    bot = await start_bot(make_settings(max_answer_tokens=16))
    user = UserChat(bot, telegram, ALLOWED)
    llm.queue_reply(" ".join(f"w{i}" for i in range(40)))  # more than 16 tokens
    return user, await user.send("count for me")


async def test_an_answer_at_the_length_limit_is_marked_and_continue_appends_to_it(
    cut_answer: tuple[UserChat, SentMessage], llm: FakeOpenAI, db: Db
) -> None:
    user, cut = cut_answer
    assert "length limit" in (cut.plain_text or "")
    first_part = (await stored(db))[-1][1]
    assert first_part and "length limit" not in first_part  # the mark is ours, not stored

    llm.queue_reply(" and the rest.")
    await user.press("Continue")
    request = llm.requests[-1]["messages"]
    assert request[-2] == {"role": "assistant", "content": first_part}
    assert "Continue" in request[-1]["content"] and request[-1]["role"] == "user"
    assert user.last.plain_text == "and the rest."
    # One answer in the history: the continuation appended, the instruction not stored.
    assert await stored(db) == [
        ("user", "count for me"),
        ("assistant", first_part + " and the rest."),
    ]
    assert not (cut.reply_markup or {}).get("inline_keyboard")  # the old button is gone


async def test_a_continue_button_of_an_older_answer_no_longer_works(
    cut_answer: tuple[UserChat, SentMessage], llm: FakeOpenAI
) -> None:
    user, cut = cut_answer
    await user.send("something else")
    requests = len(llm.requests)
    await user.press("Continue", cut)
    assert "no longer works" in (user.last.plain_text or "")
    assert len(llm.requests) == requests


async def test_an_answer_stopped_by_the_content_filter_says_so_and_stores_nothing_fake(
    start_bot: StartBot, telegram: FakeTelegram, llm: FakeOpenAI, db: Db
) -> None:
    llm.reply = REPLY
    bot = await start_bot()
    llm.finish_next("content_filter")
    answer = await UserChat(bot, telegram, ALLOWED).send("tell me")
    assert "content filter" in (answer.plain_text or "")
    assert await stored(db) == [("user", "tell me")]


# --- the user stops an answer ---------------------------------------------------------------


async def slow_answer(bot: RunningBot, telegram: FakeTelegram, llm: FakeOpenAI) -> int:
    """Start a long, slow answer; returns its draft id once a few words are shown."""
    llm.reply = " ".join(f"word{i}" for i in range(200))
    llm.token_interval = 0.05
    telegram.push_message(ALLOWED, "tell me a long story")
    await telegram.wait_for(lambda: telegram.drafts(ALLOWED), timeout=10)
    await llm.wait_for(lambda: llm.records and llm.records[-1].chunks_sent > 6)
    return telegram.drafts(ALLOWED)[-1].draft_id


async def test_stop_on_a_draft_closes_the_model_request_keeps_the_part_and_frees_the_chat(
    start_bot: StartBot, telegram: FakeTelegram, llm: FakeOpenAI, db: Db
) -> None:
    bot = await start_bot()
    draft_id = await slow_answer(bot, telegram, llm)
    assert telegram.drafts(ALLOWED)[-1].can_stop
    telegram.push_stop(ALLOWED, draft_id)
    record = llm.records[-1]
    await llm.wait_for(lambda: record.client_closed_at is not None, timeout=2)
    await bot.idle()
    assert record.status == 0  # never finished: the fake saw the connection closed
    final = telegram.sent_messages(ALLOWED)[-1]
    assert "Stopped" in (final.plain_text or "") and "word0" in (final.plain_text or "")
    (_, question), (role, partial) = await stored(db)
    assert (question, role) == ("tell me a long story", "assistant")
    assert partial.startswith("word0") and "word199" not in partial and "Stopped" not in partial
    assert await requests_made(db) == 1

    llm.reply = None  # echo, at once
    llm.token_interval = 0.0
    answer = await UserChat(bot, telegram, ALLOWED).send("next one")
    assert answer.plain_text == "Echo: next one"


async def test_slash_stop_ends_an_answer_streamed_by_editing_a_message(
    start_bot: StartBot, telegram: FakeTelegram, llm: FakeOpenAI, db: Db
) -> None:
    telegram.refuse_drafts = True
    bot = await start_bot()
    llm.reply = " ".join(f"word{i}" for i in range(200))
    llm.token_interval = 0.05
    telegram.push_message(ALLOWED, "tell me a long story")
    await telegram.wait_for(lambda: telegram.sent_messages(ALLOWED), timeout=10)
    telegram.push_message(ALLOWED, "/stop")  # while the answer is still being written
    record = llm.records[-1]
    await llm.wait_for(lambda: record.client_closed_at is not None, timeout=3)
    await bot.idle()
    messages = telegram.sent_messages(ALLOWED)
    assert len(messages) == 1  # the preview became the final answer; /stop said nothing more
    assert "Stopped" in (messages[0].plain_text or "")
    assert [role for role, _ in await stored(db)] == ["user", "assistant"]


async def test_slash_stop_with_nothing_running_says_so(
    start_bot: StartBot, telegram: FakeTelegram
) -> None:
    bot = await start_bot()
    answer = await UserChat(bot, telegram, ALLOWED).send("/stop")
    assert "No answer is being written" in (answer.plain_text or "")


async def test_a_stop_for_a_finished_draft_changes_nothing(
    start_bot: StartBot, telegram: FakeTelegram, llm: FakeOpenAI, db: Db
) -> None:
    bot = await start_bot()
    user = UserChat(bot, telegram, ALLOWED)
    await user.send("hello")
    telegram.push_stop(ALLOWED, user.messages[-1].message_id - 1)
    await bot.idle()
    assert len(user.messages) == 1
    assert [role for role, _ in await stored(db)] == ["user", "assistant"]


# --- reasoning ------------------------------------------------------------------------------


@pytest.mark.parametrize("field", ["reasoning_content", "reasoning"])
async def test_reasoning_in_its_own_field_is_neither_stored_nor_sent_back(
    field: str, start_bot: StartBot, telegram: FakeTelegram, llm: FakeOpenAI, db: Db
) -> None:
    llm.reasoning = "The user greets me. I should greet back."
    llm.reasoning_field = field
    llm.reply = "Hello!"
    bot = await start_bot()
    user = UserChat(bot, telegram, ALLOWED)
    answer = await user.send("hi")
    assert answer.plain_text == "Hello!"
    assert await stored(db) == [("user", "hi"), ("assistant", "Hello!")]
    llm.reasoning = None
    await user.send("again")
    sent = " ".join(str(m["content"]) for m in llm.requests[-1]["messages"])
    assert "greet back" not in sent


async def test_think_tags_in_the_content_are_taken_out_of_the_answer(
    start_bot: StartBot, telegram: FakeTelegram, llm: FakeOpenAI, db: Db
) -> None:
    llm.reply = "<think>\nThe user greets me.\n</think>\n\nHello there!"
    bot = await start_bot()
    user = UserChat(bot, telegram, ALLOWED)
    answer = await user.send("hi")
    assert answer.plain_text == "Hello there!"
    assert await stored(db) == [("user", "hi"), ("assistant", "Hello there!")]


async def test_the_preview_says_it_thinks_while_the_model_reasons(
    start_bot: StartBot, telegram: FakeTelegram, llm: FakeOpenAI
) -> None:
    llm.reasoning = " ".join(f"step{i}" for i in range(40))
    llm.token_interval = 0.02
    llm.reply = "Done."
    bot = await start_bot()
    await UserChat(bot, telegram, ALLOWED).send("think hard")
    history = telegram.drafts(ALLOWED)[-1].history
    assert any("Thinking" in text for text in history)
    assert not any("step" in text for text in history)


# --- the splitter, where tags fall across chunks (pure) ---------------------------------------


@pytest.mark.parametrize("size", [1, 2, 3, 5, 7, 100])
def test_think_tags_are_split_out_whatever_the_chunk_size(size: int) -> None:
    text = "  <think>plan: a, then b</think>\n\nThe answer <think> is literal here."
    splitter = ThinkSplitter()
    content = reasoning = ""
    for start in range(0, len(text), size):
        piece = splitter.feed(text[start : start + size])
        content, reasoning = content + piece.content, reasoning + piece.reasoning
    rest = splitter.flush()
    content, reasoning = content + rest.content, reasoning + rest.reasoning
    assert reasoning == "plan: a, then b"
    assert content == "The answer <think> is literal here."


def test_an_answer_without_think_tags_passes_unchanged() -> None:
    splitter = ThinkSplitter()
    pieces = [splitter.feed(p) for p in ("<", "b>bold</b> and", " more")]
    text = "".join(p.content for p in pieces) + splitter.flush().content
    assert text == "<b>bold</b> and more"
    assert not any(p.reasoning for p in pieces)
