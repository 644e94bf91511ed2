"""End to end: /chats lists the user's conversations with their persona (titled after the
first answer by the summary model), goes back to one, renames and deletes them; old and
forged buttons change nothing."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.config import MemorySettings, Settings
from app.db.models import Conversation
from app.keyboards.callbacks import ChatsAction, ChatsButton
from tests.fakes import FakeOpenAI, FakeTelegram
from tests.harness import ADMIN, ALLOWED, StartBot, UserChat, buttons

TITLE_ASKED = "Write a title for this conversation"


def titled(body: dict[str, Any]) -> str:
    """The fake model's reply: a title when asked for one, else an echo."""
    messages = body["messages"]
    if TITLE_ASKED in str(messages[0]["content"]):
        first = messages[-1]["content"].split("\n", 1)[0].removeprefix("User: ")
        return f"“About {first.split()[-1].strip('?.')}.”"
    return "Echo: " + str(messages[-1]["content"])


async def titles(db: async_sessionmaker[AsyncSession]) -> list[str | None]:
    async with db() as session:
        return list(await session.scalars(select(Conversation.title).order_by(Conversation.id)))


async def until_titled(db: async_sessionmaker[AsyncSession], count: int) -> list[str | None]:
    for _ in range(100):
        found = await titles(db)
        if len([t for t in found if t]) >= count:
            return found
        await asyncio.sleep(0.05)
    raise AssertionError(f"titles: {await titles(db)}")


def in_topic(thread_id: int) -> dict[str, Any]:
    return {"message_thread_id": thread_id, "is_topic_message": True}


def labels(chat: UserChat) -> list[str]:
    return [text for text, _ in buttons(chat.with_button("✏️"))]


async def test_two_conversations_are_listed_titled_and_the_first_can_be_taken_up_again(
    start_bot: StartBot,
    make_settings: Callable[..., Settings],
    telegram: FakeTelegram,
    llm: FakeOpenAI,
    db: async_sessionmaker[AsyncSession],
) -> None:
    llm.reply = titled
    bot = await start_bot(make_settings(memory=MemorySettings(profile=False, _env_file=None)))
    chat = UserChat(bot, telegram, ALLOWED)
    await chat.send("Tell me about cats")
    assert await until_titled(db, 1) == ["About cats"]  # quotes and full stop taken off
    await chat.send("/new")
    await chat.send("Plan a trip to Rome")
    await until_titled(db, 2)
    await chat.send("Any museums?")  # a titled conversation asks for no other title
    assert sum(TITLE_ASKED in str(r["messages"][0]["content"]) for r in llm.requests) == 2
    listing = await chat.send("/chats")
    assert "(2)" in (listing.text or "")
    rome, cats = (label for label in labels(chat) if "·" in label)
    assert rome.startswith("✅ About Rome · ") and rome.endswith(" · 4")
    assert cats.startswith("About cats · ") and cats.endswith(" · 2")
    await chat.press("About cats")
    assert "Back in “About cats”" in (chat.last.text or "")
    assert labels(chat)[0].startswith("✅ About cats")
    await chat.send("And their whiskers?")
    history = [m["content"] for m in llm.requests[-1]["messages"]]
    assert "Tell me about cats" in history and "Plan a trip to Rome" not in history


async def test_a_conversation_is_renamed_and_deleted_and_the_other_is_current_again(
    start_bot: StartBot,
    telegram: FakeTelegram,
    llm: FakeOpenAI,
    db: async_sessionmaker[AsyncSession],
) -> None:
    bot = await start_bot()  # titles off: a conversation is shown by its first words
    chat = UserChat(bot, telegram, ALLOWED)
    await chat.send("First topic here")
    await chat.send("/new")
    await chat.send("Second topic here")
    await chat.send("/chats")
    assert [label.split(" · ")[0] for label in labels(chat)[::3][:2]] == [
        "✅ Second topic here",
        "First topic here",
    ]
    first_pencil = [data for text, data in buttons(chat.with_button("✏️")) if text == "✏️"][1]
    await chat.press_data(first_pencil, chat.with_button("✏️").message_id)
    assert "Send the new title of “First topic here”" in (chat.last.text or "")
    await chat.send("   My   first\nchat  ")
    assert "My first chat" in labels(chat)[3]
    assert await titles(db) == ["My first chat", None]
    second_bin = next(data for text, data in buttons(chat.with_button("🗑")) if text == "🗑")
    await chat.press_data(second_bin, chat.with_button("🗑").message_id)
    assert "Delete the conversation “Second topic here”" in (chat.last.text or "")
    await chat.press("Delete for good")
    assert labels(chat)[0].startswith("✅ My first chat")
    await chat.send("Back to it")
    history = [m["content"] for m in llm.requests[-1]["messages"]]
    assert "First topic here" in history and "Second topic here" not in history
    assert llm.context_errors == 0


async def test_a_forged_or_stale_button_changes_nothing(
    start_bot: StartBot, telegram: FakeTelegram, db: async_sessionmaker[AsyncSession]
) -> None:
    bot = await start_bot()
    mine, theirs = UserChat(bot, telegram, ALLOWED), UserChat(bot, telegram, ADMIN)
    await theirs.send("The admin's secret plan")
    await mine.send("My own chat")
    listing = await mine.send("/chats")
    async with db() as session:
        their_id = await session.scalar(
            select(Conversation.id).where(Conversation.user_id == ADMIN)
        )
    assert their_id is not None
    for action in (ChatsAction.OPEN, ChatsAction.RENAME, ChatsAction.DELETE_YES):
        data = ChatsButton(action=action, conversation_id=their_id).pack()
        answer = await mine.press_data(data, listing.message_id)
        assert answer is not None and "no longer works" in answer
    assert await titles(db) == [None, None]
    async with db() as session:
        assert await session.scalar(select(Conversation.id).where(Conversation.id == their_id))
    await mine.press_data("ch:zz:1:0", listing.message_id)  # not a button of ours at all


async def test_many_conversations_are_paged(start_bot: StartBot, telegram: FakeTelegram) -> None:
    bot = await start_bot()
    chat = UserChat(bot, telegram, ALLOWED)
    for n in range(8):
        await chat.send(f"Topic number {n}")
        await chat.send("/new")
    listing = await chat.send("/chats")
    assert "(9)" in (listing.text or "") and "Page 1 of 2." in (listing.text or "")
    await chat.press("▶")
    assert "Page 2 of 2." in (chat.last.text or "")
    names = [label.split(" · ")[0] for label in labels(chat) if " · " in label]
    assert names == ["Topic number 2", "Topic number 1", "Topic number 0"]


async def test_with_topics_in_private_chats_new_opens_a_topic_and_each_topic_is_its_own(
    start_bot: StartBot,
    make_settings: Callable[..., Settings],
    telegram: FakeTelegram,
    llm: FakeOpenAI,
    db: async_sessionmaker[AsyncSession],
) -> None:
    telegram.topics_enabled = True
    llm.reply = titled
    bot = await start_bot(make_settings(memory=MemorySettings(profile=False, _env_file=None)))
    chat = UserChat(bot, telegram, ALLOWED)
    await chat.send("/new")
    [cats] = telegram.topics(ALLOWED)
    assert telegram.topics(ALLOWED)[cats] == "New conversation"
    assert chat.last.raw.get("message_thread_id") == cats
    await chat.send("Tell me about cats", extra=in_topic(cats))
    answer = chat.last
    assert answer.raw.get("message_thread_id") == cats
    assert [d.text for d in telegram.drafts(ALLOWED)]  # drafts stream into the topic too
    await chat.send("/new")
    dogs = max(telegram.topics(ALLOWED))
    await chat.send("And dogs?", extra=in_topic(dogs))
    history = [m["content"] for m in llm.requests[-1]["messages"]]
    assert "Tell me about cats" not in history  # another topic, another conversation
    await until_titled(db, 2)
    for _ in range(100):
        if telegram.topics(ALLOWED) == {cats: "About cats", dogs: "About dogs"}:
            break
        await asyncio.sleep(0.05)
    assert telegram.topics(ALLOWED) == {cats: "About cats", dogs: "About dogs"}
    await chat.send("/retry", extra=in_topic(cats))
    assert llm.requests[-1]["messages"][-1]["content"] == "Tell me about cats"
    assert chat.last.raw.get("message_thread_id") == cats
