"""Plugins end to end (issue 15): the example plugin (examples/plugins/dice, installed in
the test environment as an owner installs a package, found through its entry point) adds a
command with a two-step dialog, texts in Russian, and a tool behind a right admins grant;
broken plugins are left out and the bot runs."""

from __future__ import annotations

import dataclasses
import logging
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.config import PluginsSettings, Settings
from app.db.models import User
from tests.e2e.test_tools import tool_messages, tool_names
from tests.e2e.test_users_admin import open_user
from tests.fakes import FakeOpenAI, FakeTelegram
from tests.harness import ADMIN, ALLOWED, RunningBot, StartBot, UserChat


def with_plugins(
    make_settings: Callable[..., Settings], *names: str, path: Path | None = None
) -> Settings:
    settings = make_settings(tool_models=("test-model",))
    return dataclasses.replace(
        settings, plugins=PluginsSettings(enabled=names, path=path, _env_file=None)
    )


async def test_the_plugins_command_runs_its_two_step_dialog(
    start_bot: StartBot, make_settings: Callable[..., Settings], telegram: FakeTelegram
) -> None:
    bot = await start_bot(with_plugins(make_settings, "dice"))
    chat = UserChat(bot, telegram, ALLOWED)
    assert "How many dice?" in ((await chat.send("/dice")).text or "")
    assert "not a number from 1 to 10" in ((await chat.send("eleven")).text or "")
    assert "How many sides?" in ((await chat.send("3")).text or "")
    rolled = (await chat.send("6")).text or ""
    match = re.fullmatch(r"🎲 (\d), (\d), (\d) \(total (\d+)\)", rolled)
    assert match is not None, rolled
    dice = [int(match.group(i)) for i in (1, 2, 3)]
    assert all(1 <= d <= 6 for d in dice) and sum(dice) == int(match.group(4))
    # The dialog is over: the next text goes to the model.
    assert (await chat.send("hello")).text == "Echo: hello"
    # Listed where commands are: /help and the menu.
    assert "/dice" in ((await chat.send("/help")).text or "")
    menu = [c["command"] for c in telegram.commands(scope={"type": "all_private_chats"})]
    assert "dice" in menu


async def test_the_plugins_texts_come_in_the_users_language(
    start_bot: StartBot, make_settings: Callable[..., Settings], telegram: FakeTelegram
) -> None:
    bot = await start_bot(with_plugins(make_settings, "dice"))
    telegram.push_message(ALLOWED, "/dice", language_code="ru")
    await bot.idle()
    assert "Сколько кубиков?" in (telegram.sent_messages(ALLOWED)[-1].text or "")
    menu = telegram.commands(scope={"type": "all_private_chats"}, language_code="ru")
    assert {"command": "dice", "description": "Бросить кубики"} in menu


async def test_cancel_leaves_the_plugins_dialog(
    start_bot: StartBot, make_settings: Callable[..., Settings], telegram: FakeTelegram
) -> None:
    bot = await start_bot(with_plugins(make_settings, "dice"))
    chat = UserChat(bot, telegram, ALLOWED)
    await chat.send("/dice")
    assert "Cancelled" in ((await chat.send("/cancel")).text or "")
    assert (await chat.send("4")).text == "Echo: 4"


async def test_the_plugins_tool_needs_its_right_which_an_admin_grants(
    start_bot: StartBot,
    make_settings: Callable[..., Settings],
    telegram: FakeTelegram,
    llm: FakeOpenAI,
    db: async_sessionmaker[AsyncSession],
) -> None:
    bot = await start_bot(with_plugins(make_settings, "dice"))
    user = UserChat(bot, telegram, ALLOWED)
    await user.send("Hi")
    assert "roll_dice" not in tool_names(llm.requests[-1])
    # A model that calls it anyway is refused, and told so.
    llm.queue_tool_calls(("roll_dice", {"count": 2, "sides": 6}))
    llm.queue_reply("I may not roll.")
    assert (await user.send("Roll 2d6")).text == "I may not roll."
    (refused,) = tool_messages(llm.requests[-1])
    assert refused["content"] == "Error: this user may not use the tool 'roll_dice'."
    # Admins may use every tool.
    admin = UserChat(bot, telegram, ADMIN)
    await admin.send("Hi")
    assert "roll_dice" in tool_names(llm.requests[-1])
    # Granted in /users: the card has the plugin's right, described by the plugin.
    card = await open_user(bot, telegram, ALLOWED)
    assert "✗ 🔧 Roll dice (the dice plugin's tool)" in (card.last.text or "")
    await card.press("✗ 🔧 Roll dice")
    assert "✓ 🔧 Roll dice" in (card.last.text or "")
    async with db() as session:
        stored = await session.get(User, ALLOWED)
        assert stored is not None and stored.tool_rights == "dice"
    llm.queue_tool_calls(("roll_dice", {"count": 2, "sides": 6}))
    llm.queue_reply("Rolled.")
    assert (await user.send("Roll 2d6")).text == "Rolled."
    # The last tool message (the refused call's round is in the history before it).
    rolled = tool_messages(llm.requests[-1])[-1]
    assert rolled["content"].startswith("Rolled 2d6: ")
    assert "roll_dice" in tool_names(llm.requests[-2])
    # Taken back.
    await card.press("✓ 🔧 Roll dice")
    await user.send("Hi again")
    assert "roll_dice" not in tool_names(llm.requests[-1])


BROKEN = """raise RuntimeError("this plugin cannot even be imported")
"""
NOT_A_PLUGIN = """def plugin(context):
    return "a string, not a Plugin"
"""
CLASHING = """from aiogram import Router
from aiogram.filters import Command as C
from app.plugins.api import Command, Plugin

def plugin(context):
    router = Router(name="clash")

    @router.message(C("help"))
    async def mine(message):
        await message.answer("mine")

    return Plugin(name="clash", routers=[router], commands=[Command("help", "Mine")])
"""
FAILS_TO_START = """from app.plugins.api import Plugin, Tool

async def run(context, arguments):
    return "never offered"

async def start(context):
    raise ConnectionError("its server is down")

def plugin(context):
    tool = Tool("doomed_tool", "x", {"type": "object", "properties": {}}, run)
    return Plugin(name="doomed", tools=[tool], on_startup=start)
"""


async def test_broken_plugins_are_left_out_with_a_warning_and_the_bot_runs(
    start_bot: StartBot,
    make_settings: Callable[..., Settings],
    telegram: FakeTelegram,
    llm: FakeOpenAI,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    for name, source in (
        ("broken", BROKEN),
        ("notaplugin", NOT_A_PLUGIN),
        ("clash", CLASHING),
        ("doomed", FAILS_TO_START),
    ):
        (tmp_path / f"{name}.py").write_text(source)
    names = ("broken", "missing", "notaplugin", "clash", "doomed", "dice")
    with caplog.at_level(logging.WARNING):
        bot = await start_bot(with_plugins(make_settings, *names, path=tmp_path))
    warned = "\n".join(r.getMessage() for r in caplog.records if r.levelno == logging.WARNING)
    assert "'broken'" in warned and "cannot even be imported" in warned
    assert "'missing' is in PLUGINS but not installed" in warned
    assert "'notaplugin'" in warned and "not a Plugin" in warned
    assert "'clash' is left out: /help is a command of the bot already" in warned
    assert "'doomed' failed to start" in warned and "its server is down" in warned
    chat = UserChat(bot, telegram, ADMIN)
    assert "mine" not in ((await chat.send("/help")).text or "")
    assert (await chat.send("Still there?")).text == "Echo: Still there?"
    assert "doomed_tool" not in tool_names(llm.requests[-1])
    assert "How many dice?" in ((await chat.send("/dice")).text or "")


async def test_without_plugins_listed_none_is_loaded(
    start_bot: StartBot, telegram: FakeTelegram, **_: Any
) -> None:
    bot: RunningBot = await start_bot()
    chat = UserChat(bot, telegram, ALLOWED)
    answer = await chat.send("/dice")
    assert "How many dice?" not in (answer.text or "")
