"""End to end: the user's profile. Written in the background from private conversations,
sent within its share to the user's own requests only (never another user's, never a
group's), shown and edited in /memory, erased by /forget's "everything" and by /settings."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.config import MemorySettings, Settings
from app.db.models import Conversation, Message, ProfileFact, User
from app.db.profile import ProfileRepository
from app.factory import resources_of
from app.memory.profile import INSTRUCTIONS, PROFILE_HEADING, profile_message
from app.memory.tokens import load_counter
from tests.fakes import FakeOpenAI, FakeTelegram
from tests.harness import ADMIN, ALLOWED, RunningBot, StartBot, UserChat

GROUP = -1001234567890
ADA = ["The user is called Ada.", "The user is allergic to nuts."]


def profile_settings(make_settings: Callable[..., Settings], **memory: Any) -> Settings:
    values: dict[str, Any] = {
        "titles": False,
        "profile_every": 2,
        "summary_model": "cheap-model",
        "summary_retry_seconds": 0,
        **memory,
    }
    return make_settings(memory=MemorySettings(**values, _env_file=None))


def is_extraction(body: dict[str, Any]) -> bool:
    return not body.get("stream") and body["messages"][0]["content"] == INSTRUCTIONS


def extractions(llm: FakeOpenAI) -> list[dict[str, Any]]:
    return [body for body in llm.requests if is_extraction(body)]


def chat_requests(llm: FakeOpenAI) -> list[dict[str, Any]]:
    return [body for body in llm.requests if body.get("stream")]


def answering(operations: dict[str, Any]) -> Callable[[dict[str, Any]], str]:
    """The fake model: the operations for an extraction, an echo for the chat."""

    def reply(body: dict[str, Any]) -> str:
        if is_extraction(body):
            return "```json\n" + json.dumps(operations) + "\n```"
        return "Noted."

    return reply


async def written(bot: RunningBot) -> None:
    assert bot.dp is not None
    assert await resources_of(bot.dp).profile_writer.drain(10.0) == 0


async def facts_of(db: async_sessionmaker[AsyncSession], user_id: int = ALLOWED) -> list[str]:
    async with db() as session:
        return [text for _, text, _ in await ProfileRepository(session).facts(user_id)]


async def seed(db: async_sessionmaker[AsyncSession], user_id: int, facts: list[str]) -> None:
    counter = load_counter("test-model")
    async with db() as session, session.begin():
        for fact in facts:
            await ProfileRepository(session).add(user_id, fact, counter.text(fact))


def profile_in(body: dict[str, Any]) -> list[str]:
    return [
        m["content"]
        for m in body["messages"]
        if m["role"] == "system" and str(m["content"]).startswith(PROFILE_HEADING)
    ]


async def test_the_profile_is_written_after_a_conversation_and_sent_within_its_share(
    start_bot: StartBot,
    make_settings: Callable[..., Settings],
    telegram: FakeTelegram,
    llm: FakeOpenAI,
    db: async_sessionmaker[AsyncSession],
) -> None:
    llm.reply = answering({"add": ADA, "remove": []})
    settings = profile_settings(make_settings)
    bot = await start_bot(settings)
    user = UserChat(bot, telegram, ALLOWED)
    await user.send("Hi, I am Ada.")
    await written(bot)
    assert extractions(llm) == []  # every second message only
    await user.send("Please, nothing with nuts: I am allergic.")
    await written(bot)

    [extraction] = extractions(llm)
    assert extraction["model"] == "cheap-model"
    asked = extraction["messages"][1]["content"]
    assert "Hi, I am Ada." in asked and "I am allergic" in asked and "(empty)" in asked
    assert all(m.text == "Noted." for m in user.messages)  # answers never waited for it
    assert await facts_of(db) == ADA
    async with db() as session:
        user_row = await session.get(User, ALLOWED)
        newest = await session.scalar(select(func.max(Message.id)).where(Message.role == "user"))
    assert user_row is not None and user_row.profile_until_id == newest

    await user.send("What should I cook tonight?")
    sent = chat_requests(llm)[-1]["messages"]
    # After the persona's system message, before the conversation.
    assert sent[1] == {"role": "system", "content": profile_message(ADA)}
    assert llm.context_errors == 0
    # Counted exactly, within its share of the conversation budget.
    memory = resources_of(bot.dp).memory  # type: ignore[arg-type]
    async with db() as session:
        turn = await memory.profile_turn(session, ALLOWED)
    assert turn is not None and turn.content == profile_message(ADA)
    assert turn.tokens == load_counter("test-model").message("system", profile_message(ADA))
    report = (await user.send("/memory")).text or ""
    assert f"what I know about you: {turn.tokens:,}" in report


async def test_memory_shows_the_profile_and_deletes_and_adds_entries(
    start_bot: StartBot,
    make_settings: Callable[..., Settings],
    telegram: FakeTelegram,
    db: async_sessionmaker[AsyncSession],
) -> None:
    bot = await start_bot(profile_settings(make_settings))
    user = UserChat(bot, telegram, ALLOWED)
    await user.send("/start")
    await seed(db, ALLOWED, ADA)
    await user.send("/memory")
    card = user.with_button("✖ 1")
    assert "1. The user is called Ada." in (card.text or "")
    assert "2. The user is allergic to nuts." in (card.text or "")

    await user.press("✖ 1", card)
    assert await facts_of(db) == ADA[1:]
    assert "called Ada" not in (user.with_button("✖ 1").text or "")

    await user.press("Add something")
    await user.send("I have two cats, Tom and Bess.")
    assert await facts_of(db) == [ADA[1], "I have two cats, Tom and Bess."]
    assert "Noted" in (user.last.text or "") and "Tom and Bess" in (user.last.text or "")
    # Typed again: known already, not stored twice.
    await user.press("Add something")
    await user.send("I have two cats, Tom and Bess.")
    assert len(await facts_of(db)) == 2


async def test_forget_everything_erases_the_profile_and_every_private_conversation(
    start_bot: StartBot,
    make_settings: Callable[..., Settings],
    telegram: FakeTelegram,
    db: async_sessionmaker[AsyncSession],
) -> None:
    bot = await start_bot(profile_settings(make_settings))
    user = UserChat(bot, telegram, ALLOWED)
    await user.send("I live in Lisbon.")
    await user.send("/new")
    await user.send("My daughter is Eva.")
    await seed(db, ALLOWED, ADA)
    await user.send("/forget")
    await user.press("Everything you know about me")
    ask = user.with_button("Delete everything")
    assert "entries: 2" in (ask.text or "") and "conversations: 2" in (ask.text or "")

    await user.press("Delete everything", ask)
    assert await facts_of(db) == []
    async with db() as session:
        assert await session.scalar(select(func.count()).select_from(Message)) == 0
        left = (await session.scalars(select(Conversation))).all()
    assert len(left) == 1  # the new, empty one
    assert "entries: 2" in (user.last.text or "")


async def test_turned_off_in_settings_the_profile_is_deleted_and_never_written_again(
    start_bot: StartBot,
    make_settings: Callable[..., Settings],
    telegram: FakeTelegram,
    llm: FakeOpenAI,
    db: async_sessionmaker[AsyncSession],
) -> None:
    llm.reply = answering({"add": ["The user likes jazz."], "remove": []})
    bot = await start_bot(profile_settings(make_settings))
    user = UserChat(bot, telegram, ALLOWED)
    await user.send("/start")
    await seed(db, ALLOWED, ADA)
    await user.send("/settings")
    assert "Remember things about me: <b>On</b>" in (user.last.text or "")
    await user.press("Remember me")
    await user.press("Off")
    assert "Remember things about me: <b>Off</b>" in (user.last.text or "")
    assert await facts_of(db) == []
    async with db() as session:
        row = await session.get(User, ALLOWED)
    assert row is not None and row.memory_profile is False

    for text in ("I love jazz.", "Miles Davis most of all.", "And Coltrane.", "Any tips?"):
        await user.send(text)
        await written(bot)
    assert extractions(llm) == []
    assert all(profile_in(body) == [] for body in chat_requests(llm))
    memory = await user.send("/memory")
    assert "Remember things about me" in (user.messages[-2].text or "")
    assert memory.text is not None

    # On again: only what is said from now on is read.
    await user.send("/settings")
    await user.press("Remember me")
    await user.press("On")
    await user.send("I play the piano.")
    await user.send("Every evening.")
    await written(bot)
    [extraction] = extractions(llm)
    asked = extraction["messages"][1]["content"]
    assert "piano" in asked and "jazz" not in asked


async def test_one_users_profile_never_reaches_another_user(
    start_bot: StartBot,
    make_settings: Callable[..., Settings],
    telegram: FakeTelegram,
    llm: FakeOpenAI,
    db: async_sessionmaker[AsyncSession],
) -> None:
    bot = await start_bot(profile_settings(make_settings))
    ann, admin = UserChat(bot, telegram, ALLOWED), UserChat(bot, telegram, ADMIN)
    await ann.send("/start")
    await admin.send("/start")
    await seed(db, ALLOWED, ADA)
    await seed(db, ADMIN, ["The user runs a bakery."])

    await admin.send("hello")
    assert profile_in(chat_requests(llm)[-1]) == [profile_message(["The user runs a bakery."])]
    await ann.send("hello")
    assert profile_in(chat_requests(llm)[-1]) == [profile_message(ADA)]

    await admin.send("/memory")
    shown = "\n".join(m.text or "" for m in admin.messages)
    assert "Ada" not in shown and "nuts" not in shown and "bakery" in shown
    # A button naming Ann's fact, pressed by the admin, deletes nothing.
    async with db() as session:
        ann_fact = await session.scalar(
            select(ProfileFact.id).where(ProfileFact.user_id == ALLOWED).limit(1)
        )
    card = admin.with_button("✖ 1")
    answer = await admin.press_data(f"pf:d:{ann_fact}", card.message_id)
    assert answer is not None and await facts_of(db) == ADA


async def test_the_profile_never_goes_into_a_group_conversation(
    start_bot: StartBot,
    make_settings: Callable[..., Settings],
    telegram: FakeTelegram,
    llm: FakeOpenAI,
    db: async_sessionmaker[AsyncSession],
) -> None:
    llm.reply = answering({"add": ["The user is in a group."], "remove": []})
    telegram.add_group(GROUP, "Family")
    bot = await start_bot(profile_settings(make_settings))
    telegram.push_my_chat_member(GROUP, ADMIN, "left", "member", first_name="Admin")
    await bot.idle()
    await UserChat(bot, telegram, ALLOWED).send("/start")
    await seed(db, ALLOWED, ADA)
    at = "@" + telegram.bot_username
    for text in ("what is the capital of France?", "and of Spain?", "and of Italy?"):
        telegram.push_group_message(GROUP, ALLOWED, f"{at} {text}", first_name="Ann")
        await bot.idle()
        await written(bot)
    group_requests = chat_requests(llm)
    assert len(group_requests) == 3
    assert all(profile_in(body) == [] for body in group_requests)
    assert all("Ada" not in json.dumps(body) for body in group_requests)
    assert extractions(llm) == []  # group messages are never read for it


async def test_a_failing_writer_changes_nothing_and_tries_again_later(
    start_bot: StartBot,
    make_settings: Callable[..., Settings],
    telegram: FakeTelegram,
    llm: FakeOpenAI,
    db: async_sessionmaker[AsyncSession],
) -> None:
    # The cheap model does not exist yet: every extraction fails with 404.
    llm.strict_models = True
    llm.models = ["test-model"]
    llm.reply = answering({"add": ADA, "remove": []})
    bot = await start_bot(profile_settings(make_settings))
    user = UserChat(bot, telegram, ALLOWED)
    await user.send("Hi, I am Ada.")
    await user.send("I am allergic to nuts.")
    await written(bot)
    assert [r.status for r in llm.records if is_extraction(r.body)] == [404]
    assert all(m.text == "Noted." for m in user.messages)  # answers never suffered
    assert await facts_of(db) == []

    llm.models = ["test-model", "cheap-model"]
    await user.send("What can I eat?")
    await user.send("Thanks!")
    await written(bot)
    assert await facts_of(db) == ADA
    # The messages the failed call could not read were read by the next one.
    assert "Hi, I am Ada." in extractions(llm)[-1]["messages"][1]["content"]
