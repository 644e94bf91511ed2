"""The images plugin end to end (issue 15): `/image` and the model's `generate_image` tool
draw through the fake OpenAI images endpoint, the picture arrives as a photo, its cost is a
usage row, budgets refuse before the endpoint is asked, and a refused prompt is told."""

from __future__ import annotations

import dataclasses
import io
import logging
from collections.abc import Callable
from pathlib import Path

import pytest
from PIL import Image
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.config import BudgetSettings, PluginsSettings, Settings
from app.db.models import Group, Message, Usage, User
from app.domain.enums import BudgetUnit
from tests.e2e.test_groups import GROUP, added_by_admin, at
from tests.e2e.test_tools import tool_messages, tool_names
from tests.fakes import FakeOpenAI, FakeTelegram
from tests.fakes.openai import IMAGE_OUTPUT_TOKENS, count_tokens
from tests.harness import ADMIN, ALLOWED, RunningBot, StartBot, UserChat

PRICES = "gpt-image-1=0.04/image"


def with_images(
    make_settings: Callable[..., Settings],
    folder: Path,
    *,
    budget: BudgetSettings | None = None,
) -> Settings:
    """PLUGINS=images. The plugin is the bot's own entry point; until the package is
    reinstalled with it, a one-line module in PLUGINS_PATH names the same factory."""
    (folder / "images.py").write_text("from app.plugins.images import plugin\n")
    settings = make_settings(tool_models=("test-model",))
    return dataclasses.replace(
        settings,
        plugins=PluginsSettings(enabled=("images",), path=folder, _env_file=None),
        budget=budget or BudgetSettings(prices=PRICES, _env_file=None),
    )


async def granted(
    bot: RunningBot, telegram: FakeTelegram, db: async_sessionmaker[AsyncSession]
) -> UserChat:
    """The allowed user, with the plugin's right (as an admin grants it in /users)."""
    chat = UserChat(bot, telegram, ALLOWED)
    await chat.send("/help")  # known to the bot from now on
    async with db() as session, session.begin():
        user = await session.get(User, ALLOWED)
        assert user is not None
        user.tool_rights = "images"
    return chat


async def usage_rows(db: async_sessionmaker[AsyncSession], model: str) -> list[Usage]:
    async with db() as session:
        return list(
            await session.scalars(
                select(Usage).where(Usage.user_id == ALLOWED, Usage.model == model)
            )
        )


async def test_image_sends_the_picture_as_a_photo_and_records_its_cost(
    start_bot: StartBot,
    make_settings: Callable[..., Settings],
    telegram: FakeTelegram,
    llm: FakeOpenAI,
    db: async_sessionmaker[AsyncSession],
    tmp_path: Path,
) -> None:
    bot = await start_bot(with_images(make_settings, tmp_path))
    chat = await granted(bot, telegram, db)
    sent = await chat.send("/image a red fox in the snow")

    assert sent.method == "sendPhoto"
    assert sent.caption == "a red fox in the snow"
    assert sent.document_bytes is not None
    with Image.open(io.BytesIO(sent.document_bytes)) as picture:
        assert picture.format == "PNG"
    (asked,) = llm.image_requests
    assert asked["model"] == "gpt-image-1"
    assert asked["prompt"] == "a red fox in the snow"
    assert asked["size"] == "1024x1024" and asked["n"] == 1
    assert telegram.calls_of("sendChatAction", ALLOWED)[-1].params["action"] == "upload_photo"
    (row,) = await usage_rows(db, "gpt-image-1")
    assert row.requests == 1
    assert row.cost == pytest.approx(0.04)
    assert row.prompt_tokens == count_tokens("a red fox in the snow")
    assert row.completion_tokens == IMAGE_OUTPUT_TOKENS
    # Nothing of it is in the conversation: the model was never asked.
    assert llm.requests == []
    async with db() as session:
        assert list(await session.scalars(select(Message))) == []


async def test_image_alone_asks_for_the_description_and_cancel_leaves(
    start_bot: StartBot,
    make_settings: Callable[..., Settings],
    telegram: FakeTelegram,
    llm: FakeOpenAI,
    db: async_sessionmaker[AsyncSession],
    tmp_path: Path,
) -> None:
    bot = await start_bot(with_images(make_settings, tmp_path))
    chat = await granted(bot, telegram, db)
    assert "What should the picture show?" in ((await chat.send("/image")).text or "")
    assert "Cancelled" in ((await chat.send("/cancel")).text or "")
    assert (await chat.send("a lighthouse")).text == "Echo: a lighthouse"
    assert llm.image_requests == []

    await chat.send("/image")
    sent = await chat.send("a lighthouse at dusk")
    assert sent.method == "sendPhoto" and sent.caption == "a lighthouse at dusk"
    assert [r["prompt"] for r in llm.image_requests] == ["a lighthouse at dusk"]


async def test_a_user_over_budget_is_refused_and_the_endpoint_is_not_asked(
    start_bot: StartBot,
    make_settings: Callable[..., Settings],
    telegram: FakeTelegram,
    llm: FakeOpenAI,
    db: async_sessionmaker[AsyncSession],
    tmp_path: Path,
) -> None:
    budget = BudgetSettings(prices=PRICES, unit="money", daily=0.04, _env_file=None)
    bot = await start_bot(with_images(make_settings, tmp_path, budget=budget))
    chat = await granted(bot, telegram, db)
    assert (await chat.send("/image a cat")).method == "sendPhoto"
    # That picture spent the day's limit.
    refused = await chat.send("/image another cat")
    assert refused.method == "sendMessage"
    assert "You have reached your daily limit" in (refused.text or "")
    assert len(llm.image_requests) == 1
    (row,) = await usage_rows(db, "gpt-image-1")
    assert row.requests == 1


async def test_a_refused_description_is_told_and_costs_nothing(
    start_bot: StartBot,
    make_settings: Callable[..., Settings],
    telegram: FakeTelegram,
    llm: FakeOpenAI,
    db: async_sessionmaker[AsyncSession],
    tmp_path: Path,
) -> None:
    bot = await start_bot(with_images(make_settings, tmp_path))
    chat = await granted(bot, telegram, db)
    llm.refuse_image_next()
    told = await chat.send("/image something not allowed")
    assert "refused this description" in (told.text or "")
    llm.fail_image_next(500)
    told = await chat.send("/image a tree")
    assert "could not be made" in (told.text or "")
    assert await usage_rows(db, "gpt-image-1") == []
    assert not telegram.calls_of("sendPhoto")


async def test_a_picture_returned_as_a_url_is_downloaded_and_sent(
    start_bot: StartBot,
    make_settings: Callable[..., Settings],
    telegram: FakeTelegram,
    llm: FakeOpenAI,
    db: async_sessionmaker[AsyncSession],
    tmp_path: Path,
) -> None:
    llm.image_format, llm.image_usage = "url", False
    bot = await start_bot(with_images(make_settings, tmp_path))
    chat = await granted(bot, telegram, db)
    sent = await chat.send("/image a boat")
    assert sent.method == "sendPhoto" and sent.photo
    (row,) = await usage_rows(db, "gpt-image-1")
    assert (row.prompt_tokens, row.completion_tokens) == (0, 0)
    assert row.cost == pytest.approx(0.04)


async def test_the_model_draws_with_the_tool_and_is_told_the_photo_was_sent(
    start_bot: StartBot,
    make_settings: Callable[..., Settings],
    telegram: FakeTelegram,
    llm: FakeOpenAI,
    db: async_sessionmaker[AsyncSession],
    tmp_path: Path,
) -> None:
    bot = await start_bot(with_images(make_settings, tmp_path))
    chat = await granted(bot, telegram, db)
    llm.image_delay = 0.5  # long enough for the preview to show what the tool does
    llm.queue_tool_calls(("generate_image", {"prompt": "a watercolour owl"}))
    llm.queue_reply("Here is your owl.")
    answer = await chat.send("Draw me an owl")

    assert answer.text == "Here is your owl."
    assert "generate_image" in tool_names(llm.requests[0])
    photos = [m for m in chat.messages if m.method == "sendPhoto"]
    assert [p.caption for p in photos] == ["a watercolour owl"]
    (result,) = tool_messages(llm.requests[1])
    assert result["content"] == "The image was sent to the user."
    assert [r["prompt"] for r in llm.image_requests] == ["a watercolour owl"]
    (row,) = await usage_rows(db, "gpt-image-1")
    assert row.cost == pytest.approx(0.04)
    previews = [text for d in telegram.drafts(ALLOWED) for text in d.history]
    assert any("Drawing: a watercolour owl" in text for text in previews), previews


async def test_without_the_right_neither_the_tool_nor_the_command_is_theirs(
    start_bot: StartBot,
    make_settings: Callable[..., Settings],
    telegram: FakeTelegram,
    llm: FakeOpenAI,
    tmp_path: Path,
) -> None:
    bot = await start_bot(with_images(make_settings, tmp_path))
    chat = UserChat(bot, telegram, ALLOWED)
    await chat.send("Hi")
    assert "generate_image" not in tool_names(llm.requests[-1])
    llm.queue_tool_calls(("generate_image", {"prompt": "an owl"}))
    llm.queue_reply("I may not draw.")
    assert (await chat.send("Draw an owl")).text == "I may not draw."
    (refused,) = tool_messages(llm.requests[-1])
    assert refused["content"] == "Error: this user may not use the tool 'generate_image'."
    assert (await chat.send("/image an owl")).method == "sendMessage"
    assert llm.image_requests == []
    assert not telegram.calls_of("sendPhoto")
    # Admins may: they are offered the tool.
    admin = UserChat(bot, telegram, ADMIN)
    await admin.send("Hi")
    assert "generate_image" in tool_names(llm.requests[-1])


async def test_the_tool_over_budget_tells_the_model_and_draws_nothing(
    start_bot: StartBot,
    make_settings: Callable[..., Settings],
    telegram: FakeTelegram,
    llm: FakeOpenAI,
    db: async_sessionmaker[AsyncSession],
    tmp_path: Path,
) -> None:
    budget = BudgetSettings(prices=PRICES, unit="money", daily=0.04, _env_file=None)
    bot = await start_bot(with_images(make_settings, tmp_path, budget=budget))
    chat = await granted(bot, telegram, db)
    # The first picture spends the day's limit; the model asks for a second one.
    llm.queue_tool_calls(("generate_image", {"prompt": "a cat"}))
    llm.queue_tool_calls(("generate_image", {"prompt": "another cat"}))
    llm.queue_reply("One cat is all I could draw.")
    assert (await chat.send("Draw two cats")).text == "One cat is all I could draw."
    assert [r["prompt"] for r in llm.image_requests] == ["a cat"]
    refused = tool_messages(llm.requests[2])[-1]
    assert refused["content"].startswith("Error: The user has reached their budget limit")
    assert len([m for m in chat.messages if m.method == "sendPhoto"]) == 1


async def test_off_leaves_out_the_command_and_the_tool(
    start_bot: StartBot,
    make_settings: Callable[..., Settings],
    telegram: FakeTelegram,
    llm: FakeOpenAI,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    monkeypatch.setenv("OPENAI_IMAGE_MODEL", "off")
    with caplog.at_level(logging.INFO):
        bot = await start_bot(with_images(make_settings, tmp_path))
    assert any("OPENAI_IMAGE_MODEL is off" in r.getMessage() for r in caplog.records)
    admin = UserChat(bot, telegram, ADMIN)
    await admin.send("Hi")
    assert "generate_image" not in tool_names(llm.requests[-1])
    assert "/image" not in ((await admin.send("/help")).text or "")


async def test_a_server_not_openais_without_a_model_set_is_noted_at_start(
    start_bot: StartBot,
    make_settings: Callable[..., Settings],
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """At INFO, not WARNING: the plugin is on by default, and most owners of local servers
    never draw."""
    with caplog.at_level(logging.INFO):
        await start_bot(with_images(make_settings, tmp_path))
    (noted,) = [r for r in caplog.records if "OPENAI_IMAGE_MODEL is not set" in r.getMessage()]
    assert noted.levelno == logging.INFO


async def test_the_model_and_size_set_are_the_ones_asked_for(
    start_bot: StartBot,
    make_settings: Callable[..., Settings],
    telegram: FakeTelegram,
    llm: FakeOpenAI,
    db: async_sessionmaker[AsyncSession],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    monkeypatch.setenv("OPENAI_IMAGE_MODEL", "flux-schnell")
    monkeypatch.setenv("IMAGES_SIZE", "512x512")
    with caplog.at_level(logging.WARNING):
        bot = await start_bot(with_images(make_settings, tmp_path))
    assert not any("OPENAI_IMAGE_MODEL" in r.getMessage() for r in caplog.records)
    chat = await granted(bot, telegram, db)
    sent = await chat.send("/image a bridge")
    assert sent.photo is not None and sent.photo[-1]["width"] == 64
    (asked,) = llm.image_requests
    assert (asked["model"], asked["size"]) == ("flux-schnell", "512x512")
    (row,) = await usage_rows(db, "flux-schnell")
    assert row.cost == 0.0  # no price for it in BUDGET_PRICES


async def test_in_a_group_a_picture_counts_for_the_groups_budget_too(
    start_bot: StartBot,
    make_settings: Callable[..., Settings],
    telegram: FakeTelegram,
    llm: FakeOpenAI,
    db: async_sessionmaker[AsyncSession],
    tmp_path: Path,
) -> None:
    """The asker has no limit; the group has one of its own, which the first picture spends:
    the second is refused by the group's, and the model is told so."""
    telegram.add_group(GROUP, "Crew")
    bot = await start_bot(with_images(make_settings, tmp_path))
    await added_by_admin(bot, telegram)
    await granted(bot, telegram, db)
    async with db() as session, session.begin():
        group = await session.get(Group, GROUP)
        assert group is not None
        group.budget_unit, group.budget_daily = BudgetUnit.MONEY, 0.04
    llm.queue_tool_calls(("generate_image", {"prompt": "a cat"}))
    llm.queue_tool_calls(("generate_image", {"prompt": "another cat"}))
    llm.queue_reply("One cat is all the group's budget allowed.")
    telegram.push_group_message(GROUP, ALLOWED, f"{at(telegram)} draw two cats", first_name="Ann")
    await bot.idle()

    assert [r["prompt"] for r in llm.image_requests] == ["a cat"]
    assert [m.chat_id for m in telegram.calls_of("sendPhoto")] == [GROUP]
    refused = tool_messages(llm.requests[2])[-1]
    assert refused["content"].startswith("Error: This group has reached its budget limit")
    (row,) = await usage_rows(db, "gpt-image-1")
    assert row.cost == pytest.approx(0.04)
