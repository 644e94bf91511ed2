"""End to end: in the bot's topic mode, /forget, /memory, /stop and Continue act on the topic
of the private chat they are sent in (each topic is a conversation of its own), and /chats
says so instead of listing conversations to switch to."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.config import Settings
from app.db.models import Conversation, Message
from app.keyboards.callbacks import ForgetButton
from tests.fakes import FakeOpenAI, FakeTelegram
from tests.harness import ALLOWED, RunningBot, StartBot, UserChat, buttons

Db = async_sessionmaker[AsyncSession]


def in_topic(thread_id: int) -> dict[str, Any]:
    return {"message_thread_id": thread_id, "is_topic_message": True}


def history(llm: FakeOpenAI) -> list[str]:
    """What the newest request to the model carried, message by message."""
    return [str(m["content"]) for m in llm.requests[-1]["messages"]]


async def new_topic(chat: UserChat, telegram: FakeTelegram) -> int:
    """/new in topic mode: the bot opens a topic; returns its thread id."""
    await chat.send("/new")
    return max(telegram.topics(ALLOWED))


async def stored_by_topic(db: Db) -> dict[int | None, list[str]]:
    """The stored user turns of the user's conversations, by topic (None: the plain chat)."""
    async with db() as session:
        rows = await session.execute(
            select(Conversation.thread_id, Message.content)
            .join(Message, Message.conversation_id == Conversation.id)
            .where(Conversation.user_id == ALLOWED, Message.role == "user")
            .order_by(Message.id)
        )
        found: dict[int | None, list[str]] = {}
        for thread_id, content in rows:
            found.setdefault(thread_id, []).append(content)
        return found


async def topic_conversation(db: Db, thread_id: int) -> int:
    async with db() as session:
        found = await session.scalar(
            select(Conversation.id).where(
                Conversation.chat_id == ALLOWED, Conversation.thread_id == thread_id
            )
        )
    assert found is not None
    return found


async def three_conversations(
    start_bot: StartBot, telegram: FakeTelegram
) -> tuple[UserChat, int, int]:
    """A user in topic mode who talked in the plain chat and in two topics: (chat, cats
    topic, dogs topic)."""
    telegram.topics_enabled = True
    bot = await start_bot()
    chat = UserChat(bot, telegram, ALLOWED)
    await chat.send("Plain words")
    cats = await new_topic(chat, telegram)
    await chat.send("Tell me about cats", extra=in_topic(cats))
    await chat.send("And kittens?", extra=in_topic(cats))
    dogs = await new_topic(chat, telegram)
    await chat.send("Tell me about dogs", extra=in_topic(dogs))
    return chat, cats, dogs


async def test_forget_in_a_topic_deletes_its_conversation_only_and_the_topic_starts_afresh(
    start_bot: StartBot, telegram: FakeTelegram, llm: FakeOpenAI, db: Db
) -> None:
    chat, cats, dogs = await three_conversations(start_bot, telegram)
    question = await chat.send("/forget", extra=in_topic(cats))
    assert question.raw.get("message_thread_id") == cats
    assert "Its 4 messages" in (question.text or "")  # the topic's two questions and answers
    await chat.press("Delete for good")
    assert "Deleted" in (chat.last.text or "")
    assert await stored_by_topic(db) == {
        None: ["Plain words"],
        dogs: ["Tell me about dogs"],
    }
    assert telegram.topics(ALLOWED).keys() == {cats, dogs}  # the topic stays in Telegram
    await chat.send("Where were we?", extra=in_topic(cats))
    assert history(llm)[1:] == ["Where were we?"]  # the persona's memory, then nothing else
    assert chat.last.raw.get("message_thread_id") == cats
    await chat.send("More about dogs", extra=in_topic(dogs))
    assert "Tell me about dogs" in history(llm)
    await chat.send("More plain words")
    assert "Plain words" in history(llm) and "Where were we?" not in history(llm)


async def test_a_forget_button_of_another_topic_deletes_nothing(
    start_bot: StartBot, telegram: FakeTelegram, db: Db
) -> None:
    chat, cats, dogs = await three_conversations(start_bot, telegram)
    question = await chat.send("/forget", extra=in_topic(cats))
    dogs_conversation = ForgetButton(
        conversation_id=await topic_conversation(db, dogs), confirm=True
    )
    answer = await chat.press_data(dogs_conversation.pack(), question.message_id)
    assert answer is not None and "no longer works" in answer
    assert (await stored_by_topic(db))[dogs] == ["Tell me about dogs"]


async def test_forget_in_an_empty_topic_has_nothing_to_forget(
    start_bot: StartBot, telegram: FakeTelegram, db: Db
) -> None:
    chat, _, _ = await three_conversations(start_bot, telegram)
    empty = await new_topic(chat, telegram)
    answer = await chat.send("/forget", extra=in_topic(empty))
    assert "nothing to forget" in (answer.text or "")
    assert answer.raw.get("message_thread_id") == empty
    assert len(await stored_by_topic(db)) == 3


async def test_memory_in_a_topic_reports_the_topics_conversation(
    start_bot: StartBot, telegram: FakeTelegram
) -> None:
    chat, cats, dogs = await three_conversations(start_bot, telegram)
    report = await chat.send("/memory", extra=in_topic(cats))
    assert "Stored messages in this conversation: 4" in (report.text or "")
    assert report.raw.get("message_thread_id") == cats
    report = await chat.send("/memory", extra=in_topic(dogs))
    assert "Stored messages in this conversation: 2" in (report.text or "")
    await chat.send("Plain again")
    report = await chat.send("/memory")
    assert "Stored messages in this conversation: 4" in (report.text or "")
    assert report.raw.get("message_thread_id") is None


async def test_chats_in_topic_mode_says_each_topic_is_a_conversation_instead_of_a_list(
    start_bot: StartBot, telegram: FakeTelegram
) -> None:
    chat, cats, _ = await three_conversations(start_bot, telegram)
    for extra in ({}, in_topic(cats)):
        answer = await chat.send("/chats", extra=extra or None)
        assert "Each topic of this chat is a conversation of its own" in (answer.text or "")
        assert answer.raw.get("message_thread_id") == extra.get("message_thread_id")
        assert not buttons(answer)


async def slow_answer_in(
    bot: RunningBot, telegram: FakeTelegram, llm: FakeOpenAI, topic: int
) -> int:
    """Start a long, slow answer in the topic; returns its draft id once a few words are shown."""
    llm.reply = " ".join(f"word{i}" for i in range(200))
    llm.token_interval = 0.05
    telegram.push_message(ALLOWED, "tell me a long story", extra=in_topic(topic))
    await telegram.wait_for(lambda: telegram.drafts(ALLOWED), timeout=10)
    await llm.wait_for(lambda: llm.records and llm.records[-1].chunks_sent > 6)
    return telegram.drafts(ALLOWED)[-1].draft_id


async def test_slash_stop_in_a_topic_stops_the_answer_streamed_there(
    start_bot: StartBot, telegram: FakeTelegram, llm: FakeOpenAI, db: Db
) -> None:
    telegram.topics_enabled = True
    bot = await start_bot()
    chat = UserChat(bot, telegram, ALLOWED)
    cats = await new_topic(chat, telegram)
    await slow_answer_in(bot, telegram, llm, cats)
    telegram.push_message(ALLOWED, "/stop", extra=in_topic(cats))
    record = llm.records[-1]
    await llm.wait_for(lambda: record.client_closed_at is not None, timeout=3)
    await bot.idle()
    final = chat.last
    assert "Stopped" in (final.plain_text or "") and "word0" in (final.plain_text or "")
    assert final.raw.get("message_thread_id") == cats
    stored = (await stored_by_topic(db))[cats]
    assert stored == ["tell me a long story"]


async def test_the_stop_button_of_a_draft_in_a_topic_stops_its_answer(
    start_bot: StartBot, telegram: FakeTelegram, llm: FakeOpenAI
) -> None:
    telegram.topics_enabled = True
    bot = await start_bot()
    chat = UserChat(bot, telegram, ALLOWED)
    cats = await new_topic(chat, telegram)
    draft_id = await slow_answer_in(bot, telegram, llm, cats)
    assert telegram.drafts(ALLOWED)[-1].can_stop
    telegram.push_stop(ALLOWED, draft_id)
    record = llm.records[-1]
    await llm.wait_for(lambda: record.client_closed_at is not None, timeout=3)
    await bot.idle()
    assert "Stopped" in (chat.last.plain_text or "")
    assert chat.last.raw.get("message_thread_id") == cats


async def test_continue_in_a_topic_goes_on_in_the_topics_conversation(
    start_bot: StartBot,
    make_settings: Callable[..., Settings],
    telegram: FakeTelegram,
    llm: FakeOpenAI,
) -> None:
    telegram.topics_enabled = True
    bot = await start_bot(make_settings(max_answer_tokens=16))
    chat = UserChat(bot, telegram, ALLOWED)
    cats = await new_topic(chat, telegram)
    llm.queue_reply(" ".join(f"w{i}" for i in range(40)))  # more than 16 tokens
    cut = await chat.send("count for me", extra=in_topic(cats))
    assert "length limit" in (cut.plain_text or "")
    await chat.send("Plain words")  # the plain chat's conversation is another one
    llm.queue_reply(" and the rest.")
    await chat.press("Continue", cut)
    request = llm.requests[-1]["messages"]
    assert request[-3]["content"] == "count for me"
    assert request[-2]["role"] == "assistant" and request[-2]["content"].startswith("w0 w1")
    assert "Plain words" not in history(llm)
    assert chat.last.plain_text == "and the rest."
    assert chat.last.raw.get("message_thread_id") == cats


async def test_an_edited_message_in_a_topic_is_answered_anew_there(
    start_bot: StartBot, telegram: FakeTelegram, llm: FakeOpenAI, db: Db
) -> None:
    chat, cats, _ = await three_conversations(start_bot, telegram)
    sent = telegram.push_message(ALLOWED, "Are cats fish?", extra=in_topic(cats))
    await chat.bot.idle()
    telegram.push_edited_message(ALLOWED, sent["message"]["message_id"], "Are cats mammals?")
    await chat.bot.idle()
    assert history(llm)[-1] == "Are cats mammals?" and "Tell me about cats" in history(llm)
    assert chat.last.plain_text == "Echo: Are cats mammals?"
    assert chat.last.raw.get("message_thread_id") == cats
    assert (await stored_by_topic(db))[cats][-1] == "Are cats mammals?"
