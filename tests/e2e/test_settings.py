"""/settings end to end: each choice is stored and changes what the model is asked."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.db.models import Message, User
from app.delivery.render import utf16_len
from app.domain.enums import AnswerLength, MemoryMode, ReasoningDisplay
from app.keyboards.callbacks import SettingsButton, SettingsSection
from app.memory.service import STYLE_INSTRUCTIONS
from tests.fakes import FakeOpenAI, FakeTelegram
from tests.harness import ALLOWED, RunningBot, StartBot, UserChat, buttons


async def stored_user(db: async_sessionmaker[AsyncSession], user_id: int = ALLOWED) -> User:
    async with db() as session:
        user = await session.get(User, user_id)
        assert user is not None
        return user


async def open_settings(bot: RunningBot, telegram: FakeTelegram) -> UserChat:
    chat = UserChat(bot, telegram, ALLOWED)
    menu = await chat.send("/settings")
    assert "Settings" in (menu.text or "")
    return chat


async def test_the_overview_shows_every_setting_with_the_owners_defaults(
    start_bot: StartBot, telegram: FakeTelegram
) -> None:
    chat = await open_settings(await start_bot(), telegram)
    text = chat.last.text or ""
    for part in ("Assistant", "test-model", "0.7 (default)", "Normal", "Off", "Chat", "English"):
        assert part in text
    labels = [label for label, _ in buttons(chat.last)]
    assert len(labels) == 12 and "✖️ Close" in labels and "🔊 Voice answers" in labels
    assert "🔎 Recall" in labels and "🗂 Remember me" in labels and "🕒 Time zone" in labels
    assert "Time zone: <b>UTC (default)</b>" in text
    assert "Voice answers: <b>Off</b>" in text
    assert "Recall from: <b>This conversation</b>" in text


async def test_a_chosen_model_is_the_one_asked(
    start_bot: StartBot,
    make_settings: Callable[..., Any],
    telegram: FakeTelegram,
    llm: FakeOpenAI,
    db: async_sessionmaker[AsyncSession],
) -> None:
    bot = await start_bot(make_settings(models=("test-model", "other-model")))
    chat = await open_settings(bot, telegram)
    await chat.press("Model")
    await chat.press("other-model")
    assert "other-model" in (chat.last.text or "") and "Saved" in (chat.last.text or "")
    assert (await stored_user(db)).model == "other-model"
    await chat.send("hello")
    assert llm.requests[-1]["model"] == "other-model"


async def test_a_preset_temperature_and_back_to_the_default(
    start_bot: StartBot,
    telegram: FakeTelegram,
    llm: FakeOpenAI,
    db: async_sessionmaker[AsyncSession],
) -> None:
    chat = await open_settings(await start_bot(), telegram)
    await chat.press("Temperature")
    await chat.press("0.3")
    assert (await stored_user(db)).temperature == 0.3
    await chat.send("hello")
    assert llm.requests[-1]["temperature"] == 0.3
    await chat.send("/settings")
    await chat.press("Temperature")
    await chat.press("Default")
    assert (await stored_user(db)).temperature is None
    assert "0.7 (default)" in (chat.last.text or "")


async def test_a_typed_temperature_is_checked_and_the_menu_comes_back_below(
    start_bot: StartBot, telegram: FakeTelegram, db: async_sessionmaker[AsyncSession]
) -> None:
    chat = await open_settings(await start_bot(), telegram)
    menu_id = chat.last.message_id
    await chat.press("Temperature")
    await chat.press("Type a value")
    for wrong in ("hot", "2.5", "-1", "nan"):
        answer = await chat.send(wrong)
        assert "from 0 to 2" in (answer.text or "")
    overview = await chat.send("1,25")
    assert "1.25" in (overview.text or "") and "Saved" in (overview.text or "")
    assert (await stored_user(db)).temperature == 1.25
    assert [m.message_id for m in chat.messages if m.message_id == menu_id] == []
    # The dialog is over: the next text goes to the model.
    assert "from 0 to 2" not in ((await chat.send("hello")).text or "")


async def test_cancel_leaves_the_typed_temperature(
    start_bot: StartBot, telegram: FakeTelegram, db: async_sessionmaker[AsyncSession]
) -> None:
    chat = await open_settings(await start_bot(), telegram)
    await chat.press("Temperature")
    await chat.press("Type a value")
    assert "Cancelled" in ((await chat.send("/cancel")).text or "")
    assert (await stored_user(db)).temperature is None


async def test_a_short_answer_length_shrinks_the_reserve_and_tells_the_model(
    start_bot: StartBot,
    telegram: FakeTelegram,
    llm: FakeOpenAI,
    db: async_sessionmaker[AsyncSession],
) -> None:
    chat = await open_settings(await start_bot(), telegram)
    await chat.press("Answer length")
    await chat.press("Short")
    assert (await stored_user(db)).answer_length is AnswerLength.SHORT
    await chat.send("hello")
    body = llm.requests[-1]
    assert body.get("max_tokens", body.get("max_completion_tokens")) == 128
    instruction = STYLE_INSTRUCTIONS[AnswerLength.SHORT]
    assert {"role": "system", "content": instruction} in body["messages"]
    assert llm.context_errors == 0


async def test_a_long_answer_length_doubles_the_reserve(
    start_bot: StartBot, telegram: FakeTelegram, llm: FakeOpenAI
) -> None:
    chat = await open_settings(await start_bot(), telegram)
    await chat.press("Answer length")
    await chat.press("Long")
    await chat.send("hello")
    body = llm.requests[-1]
    assert body.get("max_tokens", body.get("max_completion_tokens")) == 1000


async def test_memory_mode_and_persona_are_chosen_here_too(
    start_bot: StartBot, telegram: FakeTelegram, db: async_sessionmaker[AsyncSession]
) -> None:
    chat = await open_settings(await start_bot(), telegram)
    await chat.press("Memory mode")
    await chat.press("Task")
    assert (await stored_user(db)).memory_mode is MemoryMode.TASK
    await chat.press("Persona")
    await chat.press("Assistant")
    assert "Saved" in (chat.last.text or "")


async def test_a_chosen_language_is_used_from_then_on(
    start_bot: StartBot, telegram: FakeTelegram, db: async_sessionmaker[AsyncSession]
) -> None:
    chat = await open_settings(await start_bot(), telegram)
    english = chat.last.text or ""
    await chat.press("Language")
    await chat.press("Русский")
    assert (await stored_user(db)).language == "ru"
    russian = chat.last.text or ""
    assert "Settings" not in russian and russian != english
    help_text = (await chat.send("/help")).text or ""
    assert "What I can do" not in help_text
    await chat.press_data(
        SettingsButton(section=SettingsSection.LANGUAGE, value="tg").pack(),
        (await chat.send("/settings")).message_id,
    )
    assert (await stored_user(db)).language is None
    assert "Settings" in (chat.last.text or "")


async def test_forged_settings_buttons_change_nothing(
    start_bot: StartBot,
    make_settings: Callable[..., Any],
    telegram: FakeTelegram,
    db: async_sessionmaker[AsyncSession],
) -> None:
    chat = await open_settings(await start_bot(), telegram)
    menu_id = chat.last.message_id
    for section, value in (
        (SettingsSection.MODEL, "99"),
        (SettingsSection.MODEL, "x"),
        (SettingsSection.TEMPERATURE, "7"),
        (SettingsSection.LENGTH, "huge"),
        (SettingsSection.MODE, "sleep"),
        (SettingsSection.REASONING, "loud"),
        (SettingsSection.LANGUAGE, "fr"),
        (SettingsSection.PERSONA, "999"),
        (SettingsSection.TIMEZONE, "Mars/Olympus_Mons"),
        (SettingsSection.TIMEZONE, "../../etc/passwd"),
    ):
        data = SettingsButton(section=section, value=value).pack()
        answer = await chat.press_data(data, menu_id)
        assert answer is not None, (section, value)
    user = await stored_user(db)
    assert (user.model, user.temperature, user.answer_length, user.language) == (
        None,
        None,
        None,
        None,
    )
    assert user.memory_mode is None and user.reasoning_display is None
    assert user.timezone is None


async def test_while_a_temperature_is_awaited_a_sticker_is_explained(
    start_bot: StartBot, telegram: FakeTelegram, llm: FakeOpenAI
) -> None:
    chat = await open_settings(await start_bot(), telegram)
    await chat.press("Temperature")
    await chat.press("Type a value")
    sticker = {
        "file_id": "s",
        "file_unique_id": "s",
        "type": "regular",
        "width": 512,
        "height": 512,
        "is_animated": False,
        "is_video": False,
    }
    answer = await chat.send(extra={"sticker": sticker})
    text = answer.text or ""
    assert "the settings (/settings)" in text and "from 0 to 2" in text
    assert llm.requests == []


async def test_memory_reports_the_reserve_of_the_chosen_answer_length(
    start_bot: StartBot, telegram: FakeTelegram
) -> None:
    chat = await open_settings(await start_bot(), telegram)
    await chat.press("Answer length")
    await chat.press("Short")
    await chat.send("hello")
    report = (await chat.send("/memory")).text or ""
    assert "15,808 tokens (128 more kept for the answer)" in report


# --- reasoning ------------------------------------------------------------------------------

REASONING = "Пользователь здоровается 👋; отвечу тепло."


async def stored_turns(db: async_sessionmaker[AsyncSession]) -> list[tuple[str, str]]:
    async with db() as session:
        rows = await session.execute(
            select(Message.role, Message.content)
            .where(Message.user_id == ALLOWED)
            .order_by(Message.id)
        )
        return [(role.value, content) for role, content in rows]


async def choose_reasoning(chat: UserChat, label: str) -> None:
    await chat.send("/settings")
    await chat.press("Reasoning")
    await chat.press(label)
    assert "Saved" in (chat.last.text or "")


@pytest.mark.parametrize("source", ["field", "think-tags"])
async def test_folded_reasoning_comes_above_the_answer_in_an_expandable_quote_unstored(
    source: str,
    start_bot: StartBot,
    telegram: FakeTelegram,
    llm: FakeOpenAI,
    db: async_sessionmaker[AsyncSession],
) -> None:
    chat = await open_settings(await start_bot(), telegram)
    await chat.press("Reasoning")
    await chat.press("Folded")
    assert (await stored_user(db)).reasoning_display is ReasoningDisplay.FOLDED
    if source == "field":
        llm.reasoning, llm.reply = REASONING, "**Hello** there!"
    else:
        llm.reply = f"<think>\n{REASONING}\n</think>\n\n**Hello** there!"
    answer = await chat.send("hi")
    assert answer.plain_text == f"{REASONING}\n\nHello there!"
    quote = utf16_len(REASONING)
    assert answer.parsed_entities == [
        {"type": "expandable_blockquote", "offset": 0, "length": quote},
        {"type": "bold", "offset": quote + 2, "length": 5},
    ]
    assert await stored_turns(db) == [("user", "hi"), ("assistant", "**Hello** there!")]
    llm.reasoning, llm.reply = None, "Again."
    await chat.send("again")
    sent = " ".join(str(m["content"]) for m in llm.requests[-1]["messages"])
    assert "здоровается" not in sent


async def test_reasoning_is_not_shown_by_default(
    start_bot: StartBot, telegram: FakeTelegram, llm: FakeOpenAI
) -> None:
    llm.reasoning, llm.reply = REASONING, "Hello!"
    answer = await UserChat(await start_bot(), telegram, ALLOWED).send("hi")
    assert answer.plain_text == "Hello!"
    assert answer.parsed_entities == []


async def test_the_reasoning_choice_toggles_and_survives_a_restart(
    start_bot: StartBot,
    telegram: FakeTelegram,
    llm: FakeOpenAI,
    db: async_sessionmaker[AsyncSession],
) -> None:
    first = await start_bot()
    await choose_reasoning(UserChat(first, telegram, ALLOWED), "Folded")
    await first.stop()
    chat = UserChat(await start_bot(), telegram, ALLOWED)
    overview = await chat.send("/settings")
    assert "Reasoning: <b>Folded</b>" in (overview.text or "")
    llm.reasoning, llm.reply = REASONING, "Hello!"
    assert (await chat.send("hi")).plain_text == f"{REASONING}\n\nHello!"
    await choose_reasoning(chat, "Off")
    assert (await stored_user(db)).reasoning_display is ReasoningDisplay.OFF
    assert (await chat.send("hi again")).plain_text == "Hello!"


async def test_a_time_zone_is_chosen_typed_by_city_and_put_back_to_the_default(
    start_bot: StartBot, telegram: FakeTelegram, db: async_sessionmaker[AsyncSession]
) -> None:
    chat = await open_settings(await start_bot(), telegram)
    await chat.press("Time zone")
    assert "Now: <b>UTC</b>" in (chat.last.text or "")
    await chat.press("Europe/Berlin")
    assert "Time zone: <b>Europe/Berlin</b>" in (chat.last.text or "")
    assert (await stored_user(db)).timezone == "Europe/Berlin"
    await chat.press("Time zone")
    await chat.press("Type a city")
    for wrong in ("Atlantis", "UTC+15"):
        assert "don't know that time zone" in ((await chat.send(wrong)).text or "")
    overview = await chat.send("Москва")
    assert "Time zone: <b>Europe/Moscow</b>" in (overview.text or "")
    assert (await stored_user(db)).timezone == "Europe/Moscow"
    await chat.press("Time zone")
    await chat.press("Type a city")
    assert "Time zone: <b>Etc/GMT-3</b>" in ((await chat.send("UTC+3")).text or "")
    await chat.press("Time zone")
    await chat.press("Default (UTC)")
    assert "Time zone: <b>UTC (default)</b>" in (chat.last.text or "")
    assert (await stored_user(db)).timezone is None
