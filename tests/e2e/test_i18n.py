"""End to end: the bot speaks Russian to a Telegram set to Russian, English to everyone else."""

from __future__ import annotations

import logging

import pytest

from app.commands import COMMANDS
from tests.fakes import FakeOpenAI, FakeTelegram
from tests.harness import ADMIN, ALLOWED, StartBot, UserChat, buttons

PRIVATE = {"type": "all_private_chats"}
ADMIN_CHAT = {"type": "chat", "chat_id": ADMIN}


async def chat_in(language: str | None, start_bot: StartBot, telegram: FakeTelegram) -> UserChat:
    """An allowed user whose Telegram app is set to `language`."""
    telegram.language_codes[ALLOWED] = language
    return UserChat(await start_bot(), telegram, ALLOWED)


async def test_start_greets_a_russian_user_in_russian(
    start_bot: StartBot, telegram: FakeTelegram
) -> None:
    user = await chat_in("ru", start_bot, telegram)
    greeting = (await user.send("/start")).plain_text or ""
    assert greeting.startswith("Привет, User! Я — ИИ-ассистент.")
    assert f"Ваш ID в Telegram: {ALLOWED}" in greeting
    assert "Ваш собеседник — Assistant." in greeting


async def test_help_lists_the_commands_in_russian(
    start_bot: StartBot, telegram: FakeTelegram
) -> None:
    user = await chat_in("ru", start_bot, telegram)
    listing = (await user.send("/help")).plain_text or ""
    assert listing.startswith("Команды\n/start — Приветствие, ваш ID и доступ")
    assert "/new — Начать новый разговор" in listing
    assert "Всё остальное, что вы напишете, получит ассистент." in listing


async def test_a_model_error_is_explained_in_russian(
    start_bot: StartBot, telegram: FakeTelegram, llm: FakeOpenAI
) -> None:
    user = await chat_in("ru", start_bot, telegram)
    llm.fail_next(500)
    answer = (await user.send("Как дела?")).plain_text
    assert answer == (
        "В сервисе ИИ произошла внутренняя ошибка. Попробуйте чуть позже. "
        "Ваше сообщение сохранено в разговоре."
    )


async def test_buttons_and_what_they_answer_are_in_russian(
    start_bot: StartBot, telegram: FakeTelegram
) -> None:
    user = await chat_in("ru", start_bot, telegram)
    menu = await user.send("/mode")
    assert (menu.plain_text or "").startswith("🧠 Режим памяти: Чат\n\nЧат хранит")
    assert [label for label, _ in buttons(menu)] == ["✓ Чат", "Задача"]
    await user.press("Задача")
    assert user.last.plain_text == (
        "🧠 Режим памяти: Задача. Он начнёт действовать со следующего сообщения."
    )
    assert [label for label, _ in buttons(user.last)] == ["Чат", "✓ Задача"]


@pytest.mark.parametrize("language", ["en", "de", None], ids=["en", "de", "none"])
async def test_everyone_else_is_answered_in_english(
    start_bot: StartBot, telegram: FakeTelegram, language: str | None
) -> None:
    user = await chat_in(language, start_bot, telegram)
    greeting = (await user.send("/start")).plain_text or ""
    assert greeting.startswith("Hello, User! I am an AI assistant.")
    listing = (await user.send("/help")).plain_text or ""
    assert listing.startswith("Commands\n/start — Greeting")


async def test_the_language_follows_the_users_telegram_when_it_changes(
    start_bot: StartBot, telegram: FakeTelegram
) -> None:
    user = await chat_in("ru", start_bot, telegram)
    assert (await user.send("/cancel")).plain_text == "Отменять нечего."
    telegram.language_codes[ALLOWED] = "en"
    assert (await user.send("/cancel")).plain_text == "There is nothing to cancel."


async def test_the_menu_is_registered_in_english_and_russian(
    start_bot: StartBot, telegram: FakeTelegram
) -> None:
    await start_bot()
    for scope in (PRIVATE, ADMIN_CHAT):
        english = telegram.commands(scope)
        russian = telegram.commands(scope, language_code="ru")
        assert [c["command"] for c in russian] == [c["command"] for c in english]
        for ours, theirs in zip(english, russian, strict=True):
            assert ours["description"] != theirs["description"], ours["command"]
    assert {"command": "new", "description": "Start a new conversation"} in telegram.commands(
        PRIVATE
    )
    assert {"command": "new", "description": "Начать новый разговор"} in telegram.commands(
        PRIVATE, language_code="ru"
    )
    assert len(telegram.commands(ADMIN_CHAT, language_code="ru")) == len(COMMANDS)


async def test_an_admin_who_never_wrote_to_the_bot_does_not_stop_start_up(
    start_bot: StartBot, telegram: FakeTelegram, caplog: pytest.LogCaptureFixture
) -> None:
    telegram.strict_chats = True  # Telegram knows no chat with the admin yet
    with caplog.at_level(logging.WARNING):
        bot = await start_bot()
    assert f"Admin {ADMIN} gets no admin menu yet" in caplog.text
    assert telegram.commands(ADMIN_CHAT) == []
    assert telegram.commands(PRIVATE, language_code="ru") != []
    user = UserChat(bot, telegram, ALLOWED)
    assert (await user.send("/cancel")).plain_text == "There is nothing to cancel."
