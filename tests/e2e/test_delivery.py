"""Answers always arrive, well formatted: rendering, splitting, faults, /retry, edits, pastes."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable

import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.config import Settings
from app.db.models import Message, ProcessedUpdate
from app.delivery.render import render
from app.delivery.split import telegram_length
from tests.fakes import FakeOpenAI, FakeTelegram
from tests.harness import ALLOWED, StartBot, UserChat

MARKDOWN = (
    "Here is **bold**, _italic_ and a [link](https://example.com/a_b_c).\n\n"
    "```python\nprint('<b> & snake_case')\n```\n\nDone."
)


@pytest.fixture
async def user(
    start_bot: StartBot, make_settings: Callable[..., Settings], telegram: FakeTelegram
) -> AsyncIterator[UserChat]:
    # Room for long answers: the fake model cuts replies at the answer reserve.
    settings = make_settings(context_window=64_000, max_answer_tokens=16_000)
    yield UserChat(await start_bot(settings), telegram, ALLOWED)


async def history(db: async_sessionmaker[AsyncSession]) -> list[tuple[str, str]]:
    async with db() as session:
        rows = await session.execute(select(Message.role, Message.content).order_by(Message.id))
        return [(role.value, content) for role, content in rows]


def entity_types(message: object) -> set[str]:
    return {e["type"] for e in getattr(message, "entities", None) or []}


async def test_markdown_is_sent_as_entities_without_a_parse_mode(
    user: UserChat, llm: FakeOpenAI, telegram: FakeTelegram
) -> None:
    llm.reply = MARKDOWN
    answer = await user.send("format something")
    assert answer.parse_mode is None
    assert answer.text == render(MARKDOWN).text
    assert "**" not in (answer.text or "")
    assert {"bold", "italic", "text_link", "pre"} <= entity_types(answer)
    pre = next(e for e in answer.entities or [] if e["type"] == "pre")
    assert pre["language"] == "python"


async def test_markup_that_renders_to_nothing_yet_is_not_previewed(
    user: UserChat, llm: FakeOpenAI, telegram: FakeTelegram
) -> None:
    llm.reply = "## Heading\n\n```\ncode\n```\n\nText."
    llm.token_interval = 0.02
    answer = await user.send("stream markup")
    assert answer.text == render(llm.reply).text
    assert all(c.params.get("text") for c in telegram.calls_of("sendMessageDraft"))


async def test_a_long_answer_arrives_in_order_in_parts_that_fit(
    user: UserChat, llm: FakeOpenAI, db: async_sessionmaker[AsyncSession]
) -> None:
    paragraphs = [f"Paragraph {i}: " + "lorem ipsum dolor sit amet " * 30 for i in range(40)]
    code = "```js\n" + "\n".join(f"const x{i} = {i};" for i in range(60)) + "\n```"
    llm.reply = "\n\n".join([*paragraphs[:20], code, *paragraphs[20:]])
    await user.send("write a lot")
    parts = user.messages
    assert len(parts) >= 5
    assert all(telegram_length(p.text or "") <= 4096 for p in parts)
    joined = " ".join(p.text or "" for p in parts)
    positions = [joined.index(f"Paragraph {i}:") for i in range(40)]
    assert positions == sorted(positions)
    assert sum(1 for p in parts for e in p.entities or [] if e["type"] == "pre") == 1
    assert (await history(db))[-1] == ("assistant", llm.reply)


async def test_flood_control_on_the_final_message_is_waited_out(
    user: UserChat, llm: FakeOpenAI, telegram: FakeTelegram
) -> None:
    telegram.fail_next("sendMessage", status=429, retry_after=1, chat_id=ALLOWED)
    started = asyncio.get_running_loop().time()
    answer = await user.send("hello")
    assert answer.text == "Echo: hello"
    assert len(user.messages) == 1
    assert asyncio.get_running_loop().time() - started >= 1.0


async def test_flood_control_mid_stream_skips_a_preview_and_the_answer_still_arrives(
    user: UserChat, llm: FakeOpenAI, telegram: FakeTelegram
) -> None:
    llm.reply = " ".join(f"word{i}" for i in range(30))
    llm.token_interval = 0.02
    telegram.fail_next("sendMessageDraft", status=429, retry_after=1, chat_id=ALLOWED)
    answer = await user.send("stream please")
    assert answer.text == llm.reply
    failed = [c for c in telegram.calls_of("sendMessageDraft") if c.failed]
    assert len(failed) == 1


@pytest.mark.parametrize(
    "fault",
    ["server error", "network reset"],
)
async def test_transient_bot_api_failures_are_retried(
    user: UserChat, telegram: FakeTelegram, fault: str
) -> None:
    if fault == "server error":
        telegram.fail_next("sendMessage", status=502, description="Bad Gateway", chat_id=ALLOWED)
    else:
        telegram.drop_connection_next("sendMessage")
    answer = await user.send("are you there?")
    assert answer.text == "Echo: are you there?"
    assert len(user.messages) == 1


async def test_formatting_telegram_refuses_is_dropped_not_the_text(
    user: UserChat, llm: FakeOpenAI, telegram: FakeTelegram, db: async_sessionmaker[AsyncSession]
) -> None:
    llm.reply = MARKDOWN
    telegram.fail_next(
        "sendMessage",
        status=400,
        description="Bad Request: can't parse entities: unsupported start tag",
        chat_id=ALLOWED,
    )
    answer = await user.send("format it")
    assert answer.text == render(MARKDOWN).text
    assert not answer.entities
    assert (await history(db))[-1] == ("assistant", MARKDOWN)


async def test_a_message_telegram_finds_too_long_is_sent_in_smaller_parts(
    user: UserChat, llm: FakeOpenAI, telegram: FakeTelegram
) -> None:
    llm.reply = "sentence number one. " * 150  # about 3,150 characters: one part
    telegram.fail_next(
        "sendMessage", status=400, description="Bad Request: message is too long", chat_id=ALLOWED
    )
    await user.send("long one")
    texts = [m.text or "" for m in user.messages]
    assert len(texts) >= 2
    assert "".join(texts).replace(" ", "") == llm.reply.strip().replace(" ", "")


async def test_message_not_modified_while_editing_is_not_an_error(
    user: UserChat, llm: FakeOpenAI, telegram: FakeTelegram
) -> None:
    telegram.refuse_drafts = True
    llm.reply = " ".join(f"w{i}" for i in range(20))
    llm.token_interval = 0.02
    telegram.fail_next(
        "editMessageText",
        status=400,
        description="Bad Request: message is not modified: specified new message content "
        "and reply markup are exactly the same as a current content and reply markup of the "
        "message",
        times=3,
    )
    await user.send("go")
    await telegram.wait_for(lambda: user.last.text == llm.reply)
    assert len(user.messages) == 1


async def test_openai_rate_limits_are_retried_by_the_client(
    start_bot: StartBot,
    make_settings: Callable[..., Settings],
    telegram: FakeTelegram,
    llm: FakeOpenAI,
) -> None:
    chat = UserChat(await start_bot(make_settings(max_retries=2)), telegram, ALLOWED)
    llm.fail_next(429, message="slow down", retry_after=0)
    llm.fail_next(500, message="boom")
    answer = await chat.send("persist")
    assert answer.text == "Echo: persist"
    assert len(llm.requests) == 3


async def test_retry_replaces_the_last_answer_in_history(
    user: UserChat, llm: FakeOpenAI, db: async_sessionmaker[AsyncSession]
) -> None:
    llm.queue_reply("first answer")
    llm.queue_reply("second answer")
    await user.send("question")
    answer = await user.send("/retry")
    assert answer.text == "second answer"
    assert await history(db) == [("user", "question"), ("assistant", "second answer")]
    contents = [m["content"] for m in llm.requests[-1]["messages"]]
    assert "first answer" not in contents and contents[-1] == "question"


async def test_retry_with_nothing_to_retry_says_so(user: UserChat, llm: FakeOpenAI) -> None:
    assert "no message of yours" in ((await user.send("/retry")).text or "")
    assert llm.requests == []


async def test_editing_the_last_message_answers_the_edited_text(
    user: UserChat, llm: FakeOpenAI, telegram: FakeTelegram, db: async_sessionmaker[AsyncSession]
) -> None:
    await user.send("what is 2+2?")
    sent = telegram.user_messages(ALLOWED)[-1]
    telegram.push_edited_message(ALLOWED, sent["message_id"], "what is 3+3?")
    await user.bot.idle()
    assert user.last.text == "Echo: what is 3+3?"
    assert await history(db) == [("user", "what is 3+3?"), ("assistant", "Echo: what is 3+3?")]


async def test_editing_an_older_message_is_acknowledged_and_changes_nothing(
    user: UserChat, llm: FakeOpenAI, telegram: FakeTelegram, db: async_sessionmaker[AsyncSession]
) -> None:
    await user.send("first")
    first = telegram.user_messages(ALLOWED)[-1]
    await user.send("second")
    before = await history(db)
    telegram.push_edited_message(ALLOWED, first["message_id"], "first, edited")
    await user.bot.idle()
    assert "only answer again when you edit your latest" in (user.last.text or "")
    assert len(llm.requests) == 2
    assert await history(db) == before


async def test_a_long_paste_split_by_telegram_is_answered_once(
    start_bot: StartBot,
    telegram: FakeTelegram,
    llm: FakeOpenAI,
    db: async_sessionmaker[AsyncSession],
) -> None:
    chat = UserChat(await start_bot(paste_window=0.5), telegram, ALLOWED)
    first, second = "a" * 4096, "b" * 1200
    telegram.push_message(ALLOWED, first)
    await asyncio.sleep(0.1)
    telegram.push_message(ALLOWED, second)
    await chat.bot.idle()
    await asyncio.sleep(0.6)
    await chat.bot.idle()
    assert len(llm.requests) == 1
    assert llm.requests[0]["messages"][-1]["content"] == first + "\n" + second
    assert [role for role, _ in await history(db)] == ["user", "assistant"]


async def test_a_short_message_is_not_held_back(user: UserChat, llm: FakeOpenAI) -> None:
    started = asyncio.get_running_loop().time()
    await user.send("quick")
    assert asyncio.get_running_loop().time() - started < 0.9


async def test_a_redelivered_update_is_answered_once(
    start_bot: StartBot,
    telegram: FakeTelegram,
    llm: FakeOpenAI,
    db: async_sessionmaker[AsyncSession],
) -> None:
    first = await start_bot()
    update = telegram.push_message(ALLOWED, "only once, please")
    await first.idle()
    await first.stop()
    telegram.push_update(update)  # as Telegram redelivers after a crash or a webhook timeout
    second = await start_bot()
    await second.idle()
    assert len(llm.requests) == 1
    assert [m.text for m in telegram.sent_messages(ALLOWED)] == ["Echo: only once, please"]
    async with db() as session:
        recorded = (await session.scalars(select(ProcessedUpdate.update_id))).all()
    assert update["update_id"] in recorded


async def test_an_update_delivered_twice_to_a_running_bot_is_answered_once(
    user: UserChat, telegram: FakeTelegram, llm: FakeOpenAI
) -> None:
    update = telegram.push_message(ALLOWED, "just once")
    telegram.push_update(update)
    await user.bot.idle()
    assert len(llm.requests) == 1
    assert [m.text for m in user.messages] == ["Echo: just once"]
