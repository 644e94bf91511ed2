"""Reminders end to end (issue 15): the bot's own plugin. The model sets one with a tool
call, it is kept in the database and sent when the (test) clock reaches it, in the user's
time zone and language, also after a restart; /reminders lists them with delete buttons."""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.config import PluginsSettings, Settings, ToolsSettings
from app.db.models import ScheduledJob
from tests.e2e.test_tools import tool_messages, tool_names
from tests.fakes import FakeOpenAI, FakeTelegram
from tests.harness import ALLOWED, RunningBot, StartBot, UserChat

START = datetime(2026, 12, 1, 11, 0, tzinfo=UTC)  # noon in Berlin


class Clock:
    """A clock the test moves."""

    def __init__(self, now: datetime = START) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **delta: float) -> None:
        self.now += timedelta(**delta)


def settings_for(make_settings: Callable[..., Settings]) -> Settings:
    settings = make_settings(tool_models=("test-model",))
    tools = ToolsSettings(default_timezone="Europe/Berlin", _env_file=None)
    # The owner's default PLUGINS: the bot's own reminders.
    return dataclasses.replace(settings, tools=tools, plugins=PluginsSettings(_env_file=None))


async def start(start_bot: StartBot, settings: Settings, clock: Clock) -> RunningBot:
    return await start_bot(settings, clock=clock, jobs_poll=0.05)


async def jobs(db: async_sessionmaker[AsyncSession]) -> int:
    async with db() as session:
        return int(await session.scalar(select(func.count()).select_from(ScheduledJob)) or 0)


async def reminders_sent(telegram: FakeTelegram, timeout: float = 5.0) -> list[str]:
    async with asyncio.timeout(timeout):
        while True:
            found = [
                m.text or ""
                for m in telegram.sent_messages(ALLOWED)
                if (m.text or "").startswith(("⏰ Reminder", "⏰ Напоминание"))
            ]
            if found:
                await asyncio.sleep(0.2)  # and no second one follows
                return [
                    m.text or ""
                    for m in telegram.sent_messages(ALLOWED)
                    if (m.text or "").startswith(("⏰ Reminder", "⏰ Напоминание"))
                ]
            await asyncio.sleep(0.02)


async def test_a_reminder_set_by_the_model_arrives_at_its_time_once(
    start_bot: StartBot,
    make_settings: Callable[..., Settings],
    telegram: FakeTelegram,
    llm: FakeOpenAI,
    db: async_sessionmaker[AsyncSession],
) -> None:
    clock = Clock()
    bot = await start(start_bot, settings_for(make_settings), clock)
    chat = UserChat(bot, telegram, ALLOWED)
    llm.queue_tool_calls(("create_reminder", {"text": "call mom", "at": "2026-12-02 09:00"}))
    llm.queue_reply("I will remind you tomorrow at 9.")
    assert (await chat.send("Remind me tomorrow at 9 to call mom")).text == (
        "I will remind you tomorrow at 9."
    )
    assert {"create_reminder", "list_reminders", "cancel_reminder"} <= set(
        tool_names(llm.requests[0])
    )
    (result,) = tool_messages(llm.requests[1])
    # 09:00 in Berlin (the user's zone), stored as 08:00 UTC.
    assert "for Wed 02 Dec 2026, 09:00 (Europe/Berlin): call mom" in result["content"]
    async with db() as session:
        (job,) = await session.scalars(select(ScheduledJob))
        assert job.due_at.replace(tzinfo=UTC) == datetime(2026, 12, 2, 8, 0, tzinfo=UTC)
    # Not yet.
    clock.advance(hours=20, minutes=59)
    await asyncio.sleep(0.3)
    assert not [m for m in chat.messages if (m.text or "").startswith("⏰")]
    clock.advance(minutes=1)
    assert await reminders_sent(telegram) == ["⏰ Reminder: call mom"]
    assert await jobs(db) == 0


async def test_a_reminder_survives_a_restart(
    start_bot: StartBot,
    make_settings: Callable[..., Settings],
    telegram: FakeTelegram,
    llm: FakeOpenAI,
    db: async_sessionmaker[AsyncSession],
) -> None:
    clock = Clock()
    settings = settings_for(make_settings)
    bot = await start(start_bot, settings, clock)
    llm.queue_tool_calls(("create_reminder", {"text": "water the plants", "in_minutes": 30}))
    llm.queue_reply("Done.")
    await UserChat(bot, telegram, ALLOWED).send("In half an hour remind me to water the plants")
    await bot.stop()
    assert await jobs(db) == 1
    clock.advance(hours=2)  # the bot was down when it was due
    await start(start_bot, settings, clock)
    assert await reminders_sent(telegram) == ["⏰ Reminder: water the plants"]


async def test_a_reminder_comes_in_the_language_it_was_asked_in(
    start_bot: StartBot,
    make_settings: Callable[..., Settings],
    telegram: FakeTelegram,
    llm: FakeOpenAI,
) -> None:
    clock = Clock()
    bot = await start(start_bot, settings_for(make_settings), clock)
    llm.queue_tool_calls(("create_reminder", {"text": "позвонить маме", "in_minutes": 5}))
    llm.queue_reply("Хорошо.")
    telegram.push_message(ALLOWED, "Напомни через 5 минут позвонить маме", language_code="ru")
    await bot.idle()
    clock.advance(minutes=5)
    assert await reminders_sent(telegram) == ["⏰ Напоминание: позвонить маме"]


async def test_reminders_lists_them_and_deletes_one(
    start_bot: StartBot,
    make_settings: Callable[..., Settings],
    telegram: FakeTelegram,
    llm: FakeOpenAI,
    db: async_sessionmaker[AsyncSession],
) -> None:
    clock = Clock()
    bot = await start(start_bot, settings_for(make_settings), clock)
    chat = UserChat(bot, telegram, ALLOWED)
    assert "no reminders" in ((await chat.send("/reminders")).text or "")
    llm.queue_tool_calls(
        ("create_reminder", {"text": "dentist", "at": "2026-12-03 15:30"}),
        ("create_reminder", {"text": "pay rent", "at": "2026-12-05 10:00"}),
    )
    llm.queue_reply("Both set.")
    await chat.send("Dentist on the 3rd at 15:30 and rent on the 5th at 10")
    listing = await chat.send("/reminders")
    text = listing.text or ""
    assert text.index("dentist") < text.index("pay rent")
    assert "Thu 03 Dec 2026, 15:30 (Europe/Berlin)" in text
    data = chat.button_data(listing, "🗑")  # the dentist's: the first
    assert await chat.press_data(data, listing.message_id) == "Deleted."
    assert "dentist" not in (chat.last.text or "") and "pay rent" in (chat.last.text or "")
    assert await jobs(db) == 1
    # The same (old) button again: gone, and said so.
    answer = await chat.press_data(data, listing.message_id)
    assert answer == "That reminder is no longer there."
    # The model can list and cancel too.
    llm.queue_tool_calls(("list_reminders", {}))
    llm.queue_reply("You have one.")
    await chat.send("What reminders do I have?")
    (listed,) = tool_messages(llm.requests[-1])[-1:]
    assert "pay rent" in listed["content"] and "dentist" not in listed["content"]


async def test_a_time_in_the_past_is_refused_to_the_model(
    start_bot: StartBot,
    make_settings: Callable[..., Settings],
    telegram: FakeTelegram,
    llm: FakeOpenAI,
    db: async_sessionmaker[AsyncSession],
) -> None:
    bot = await start(start_bot, settings_for(make_settings), Clock())
    llm.queue_tool_calls(("create_reminder", {"text": "too late", "at": "2026-11-30 09:00"}))
    llm.queue_reply("That time has passed.")
    await UserChat(bot, telegram, ALLOWED).send("Remind me yesterday")
    (refused,) = tool_messages(llm.requests[-1])
    assert refused["content"].startswith("Error: that time has passed")
    assert await jobs(db) == 0


async def test_reminders_are_in_the_menu_by_default(
    start_bot: StartBot, make_settings: Callable[..., Settings], telegram: FakeTelegram
) -> None:
    await start(start_bot, settings_for(make_settings), Clock())
    menu = telegram.commands({"type": "all_private_chats"}, language_code="ru")
    assert {"command": "reminders", "description": "Ваши напоминания: посмотреть и удалить"} in menu


async def test_a_repeating_reminder_comes_again_at_the_same_time_of_day(
    start_bot: StartBot,
    make_settings: Callable[..., Settings],
    telegram: FakeTelegram,
    llm: FakeOpenAI,
    db: async_sessionmaker[AsyncSession],
) -> None:
    """Every weekday at 08:00 in Berlin, from Friday: sent on Friday, then on Monday (not on
    the weekend); /reminders says it repeats; deleting it ends the series."""
    clock = Clock(datetime(2026, 12, 3, 11, 0, tzinfo=UTC))  # Thursday
    bot = await start(start_bot, settings_for(make_settings), clock)
    chat = UserChat(bot, telegram, ALLOWED)
    arguments = {"text": "stand-up", "at": "2026-12-04 08:00", "repeat": "weekdays"}
    llm.queue_tool_calls(("create_reminder", arguments))
    llm.queue_reply("Every weekday at 8.")
    await chat.send("Remind me of the stand-up every weekday at 8, from tomorrow")
    (result,) = tool_messages(llm.requests[1])
    assert "Fri 04 Dec 2026, 08:00 (Europe/Berlin), repeating weekdays" in result["content"]

    clock.now = datetime(2026, 12, 4, 7, 0, tzinfo=UTC)  # Friday, 08:00 in Berlin
    assert await reminders_sent(telegram) == ["⏰ Reminder: stand-up"]
    async with db() as session:
        (job,) = await session.scalars(select(ScheduledJob))
        assert job.due_at.replace(tzinfo=UTC) == datetime(2026, 12, 7, 7, 0, tzinfo=UTC)
    listing = (await chat.send("/reminders")).text or ""
    assert "Mon 07 Dec 2026, 08:00 (Europe/Berlin) · 🔁 every weekday" in listing

    clock.now = datetime(2026, 12, 7, 7, 0, tzinfo=UTC)  # Monday
    await asyncio.sleep(0.3)
    sent = [m.text for m in telegram.sent_messages(ALLOWED) if (m.text or "").startswith("⏰ R")]
    assert sent == ["⏰ Reminder: stand-up"] * 2
    assert await jobs(db) == 1  # Tuesday's
    listing_message = await chat.send("/reminders")
    assert await chat.press_data(
        chat.button_data(listing_message, "🗑"), listing_message.message_id
    ) == ("Deleted.")
    assert await jobs(db) == 0
