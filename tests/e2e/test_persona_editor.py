"""/edit_bot through the real dispatcher: every branch, cancel, restart, stale buttons, rights."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable

import pytest
from aiogram.fsm.storage.base import StorageKey
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.config import Settings
from app.db.models import FsmRecord, MemoryEntry, Persona
from app.fsm.personas import EditPersonaDialog
from app.memory.context import compose_system_message, pair_tokens
from app.memory.tokens import load_counter
from app.services.personas import DEFAULT_SYSTEM_PROMPT
from tests.fakes import FakeOpenAI, FakeTelegram
from tests.harness import ADMIN, ALLOWED, StartBot, UserChat

COUNTER = load_counter("test-model")


@pytest.fixture
async def admin(start_bot: StartBot, telegram: FakeTelegram) -> AsyncIterator[UserChat]:
    bot = await start_bot()
    yield UserChat(bot, telegram, ADMIN)


async def state_of(chat: UserChat) -> str | None:
    assert chat.bot.dp is not None and chat.bot.bot is not None
    key = StorageKey(bot_id=chat.bot.bot.id, chat_id=chat.user_id, user_id=chat.user_id)
    return await chat.bot.dp.storage.get_state(key)


async def entries(db: async_sessionmaker[AsyncSession]) -> list[tuple[str, str, str | None]]:
    async with db() as session:
        rows = await session.scalars(select(MemoryEntry).order_by(MemoryEntry.position))
        return [(e.kind.value, e.text, e.answer) for e in rows]


async def default_persona(db: async_sessionmaker[AsyncSession]) -> Persona:
    async with db() as session:
        persona = await session.scalar(select(Persona).where(Persona.is_default.is_(True)))
        assert persona is not None
        return persona


async def add_fact(chat: UserChat, text: str) -> None:
    await chat.press("➕ Fact")
    await chat.send(text)
    await chat.press("Save")


async def test_the_editor_opens_on_the_users_persona_with_its_budget(admin: UserChat) -> None:
    menu = await admin.send("/edit_bot")
    assert "Persona “Assistant”" in (menu.text or "")
    assert "tokens of" in (menu.text or "") and "left for the conversation" in (menu.text or "")
    assert await state_of(admin) == EditPersonaDialog.browsing.state


async def test_adding_a_fact_shows_its_cost_then_saves_it_and_recounts_the_persona(
    admin: UserChat, db: async_sessionmaker[AsyncSession]
) -> None:
    await admin.send("/edit_bot")
    await admin.press("➕ Fact")
    assert await state_of(admin) == EditPersonaDialog.typing_fact.state
    confirm = await admin.send("Your favourite drink is green tea.")
    assert "It costs" in (confirm.text or "") and "tokens" in (confirm.text or "")
    assert await state_of(admin) == EditPersonaDialog.confirming_entry.state
    assert await entries(db) == []  # nothing saved before Save
    assert await admin.press("Save") == "Saved."
    assert await entries(db) == [("fact", "Your favourite drink is green tea.", None)]
    persona = await default_persona(db)
    system = compose_system_message(DEFAULT_SYSTEM_PROMPT, ["Your favourite drink is green tea."])
    assert persona.system_message_tokens == COUNTER.message("system", system)
    assert "green tea" in (admin.last.text or "")
    assert len([m for m in admin.messages if not m.deleted]) == 1  # one dialog message


async def test_adding_a_question_answer_pair_asks_question_then_answer(
    admin: UserChat, db: async_sessionmaker[AsyncSession]
) -> None:
    await admin.send("/edit_bot")
    await admin.press("➕ Question/answer")
    assert "Question" in (admin.last.text or "")
    await admin.send("Who are you?")
    assert await state_of(admin) == EditPersonaDialog.typing_answer.state
    await admin.send("I am Ann, a sailor.")
    await admin.press("Save")
    assert await entries(db) == [("qa", "Who are you?", "I am Ann, a sailor.")]
    async with db() as session:
        entry = await session.scalar(select(MemoryEntry))
    assert entry is not None
    assert entry.token_count == pair_tokens(COUNTER, "Who are you?", "I am Ann, a sailor.")


async def test_discard_saves_nothing(admin: UserChat, db: async_sessionmaker[AsyncSession]) -> None:
    await admin.send("/edit_bot")
    await admin.press("➕ Fact")
    await admin.send("A fact I regret")
    await admin.press("Discard")
    assert await entries(db) == []
    assert await state_of(admin) == EditPersonaDialog.browsing.state


@pytest.mark.parametrize(
    ("text", "problem"),
    [("x" * 10_000, "at most 2,000"), ("   ", "empty")],
)
async def test_bad_entry_text_is_refused_and_the_dialog_stays(
    admin: UserChat, db: async_sessionmaker[AsyncSession], text: str, problem: str
) -> None:
    await admin.send("/edit_bot")
    await admin.press("➕ Fact")
    answer = await admin.send(text)
    assert problem in (answer.text or "")
    assert await state_of(admin) == EditPersonaDialog.typing_fact.state
    assert await entries(db) == []


async def test_an_entry_that_would_overflow_the_budget_is_refused(
    start_bot: StartBot,
    make_settings: Callable[..., Settings],
    telegram: FakeTelegram,
    db: async_sessionmaker[AsyncSession],
) -> None:
    bot = await start_bot(make_settings(context_window=1_000, max_answer_tokens=200))
    chat = UserChat(bot, telegram, ADMIN)
    await chat.send("/edit_bot")
    await chat.press("➕ Fact")
    answer = await chat.send("word " * 390)
    assert "at most 368" in (answer.text or "")
    assert await state_of(chat) == EditPersonaDialog.typing_fact.state
    assert await entries(db) == []


async def test_an_entry_can_be_opened_edited_moved_and_deleted(
    admin: UserChat, db: async_sessionmaker[AsyncSession]
) -> None:
    await admin.send("/edit_bot")
    await add_fact(admin, "first fact")
    await add_fact(admin, "second fact")
    await admin.press("2")
    assert "second fact" in (admin.last.text or "")
    await admin.press("Up")
    assert [t for _, t, _ in await entries(db)] == ["second fact", "first fact"]
    await admin.press("Edit text")
    assert await state_of(admin) == EditPersonaDialog.typing_entry_text.state
    await admin.send("second fact, edited")
    assert "second fact, edited" in (admin.last.text or "")
    await admin.press("Delete")
    assert "Delete this entry" in (admin.last.text or "")
    assert await admin.press("Yes, delete") == "Deleted."
    assert [t for _, t, _ in await entries(db)] == ["first fact"]
    persona = await default_persona(db)
    system = compose_system_message(DEFAULT_SYSTEM_PROMPT, ["first fact"])
    assert persona.system_message_tokens == COUNTER.message("system", system)


async def test_a_pairs_answer_can_be_edited(
    admin: UserChat, db: async_sessionmaker[AsyncSession]
) -> None:
    await admin.send("/edit_bot")
    await admin.press("Question/answer")
    await admin.send("Q?")
    await admin.send("A.")
    await admin.press("Save")
    await admin.press("1")
    await admin.press("Edit answer")
    await admin.send("A better answer.")
    assert await entries(db) == [("qa", "Q?", "A better answer.")]


async def test_rename_validates_and_saves(
    admin: UserChat, db: async_sessionmaker[AsyncSession], telegram: FakeTelegram
) -> None:
    await admin.send("/new_persona")
    await admin.send("Taken")
    await admin.send("A persona whose name is taken.")
    await admin.press("Done")
    await admin.press("Later")
    await admin.send("/edit_bot")
    await admin.press("Name")
    assert "already exists" in (await admin.send("taken")).text  # type: ignore[operator]
    assert "letters, digits" in (await admin.send("<script>")).text  # type: ignore[operator]
    await admin.send("Helper")
    assert (await default_persona(db)).name == "Helper"
    assert await state_of(admin) == EditPersonaDialog.browsing.state


async def test_a_new_system_prompt_is_saved_and_recounted(
    admin: UserChat, db: async_sessionmaker[AsyncSession]
) -> None:
    await admin.send("/edit_bot")
    await admin.press("System prompt")
    assert DEFAULT_SYSTEM_PROMPT in (admin.last.text or "")  # shows the current one
    await admin.send("You are a terse pirate.")
    persona = await default_persona(db)
    assert persona.system_prompt == "You are a terse pirate."
    assert persona.system_message_tokens == COUNTER.message("system", "You are a terse pirate.")


async def test_close_ends_the_dialog(admin: UserChat) -> None:
    await admin.send("/edit_bot")
    await admin.press("Close")
    assert "editor closed" in (admin.last.text or "")
    assert await state_of(admin) is None


@pytest.mark.parametrize(
    "steps",
    [
        [],
        ["➕ Fact"],
        ["➕ Question/answer"],
        ["➕ Question/answer", "text:Q?"],
        ["➕ Fact", "text:a fact"],
        ["Name"],
        ["System prompt"],
        ["➕ Fact", "text:f", "Save", "1", "Edit text"],
    ],
    ids=["browsing", "fact", "question", "answer", "confirming", "name", "prompt", "entry"],
)
async def test_cancel_works_in_every_state(
    admin: UserChat, db: async_sessionmaker[AsyncSession], steps: list[str]
) -> None:
    await admin.send("/edit_bot")
    for step in steps:
        if step.startswith("text:"):
            await admin.send(step.removeprefix("text:"))
        else:
            await admin.press(step)
    assert await state_of(admin) is not None
    assert "Cancelled" in ((await admin.send("/cancel")).text or "")
    assert await state_of(admin) is None
    before = await entries(db)
    await admin.send("hello again")  # now an ordinary chat message
    assert await entries(db) == before


async def test_a_restart_mid_dialog_keeps_the_dialog(
    start_bot: StartBot, telegram: FakeTelegram, db: async_sessionmaker[AsyncSession]
) -> None:
    first = await start_bot()
    chat = UserChat(first, telegram, ADMIN)
    await chat.send("/edit_bot")
    await chat.press("➕ Fact")
    async with db() as session:
        record = await session.scalar(select(FsmRecord))
    assert record is not None and record.state == EditPersonaDialog.typing_fact.state
    await first.stop()

    chat.bot = await start_bot()
    confirm = await chat.send("Survives restarts.")
    assert "It costs" in (confirm.text or "")
    await chat.press("Save")
    assert await entries(db) == [("fact", "Survives restarts.", None)]


async def test_buttons_of_a_closed_menu_answer_and_change_nothing(
    admin: UserChat, db: async_sessionmaker[AsyncSession]
) -> None:
    menu = await admin.send("/edit_bot")
    await admin.send("/cancel")
    answer = await admin.press("➕ Fact", menu)
    assert answer is not None and "no longer works" in answer
    assert await state_of(admin) is None


async def test_forged_and_foreign_callback_data_is_refused(admin: UserChat) -> None:
    menu = await admin.send("/edit_bot")
    for data in ["pe:zz:1:0:0", "garbage", "pe:pg:999:0:0", "pn:dl:999:1"]:
        answer = await admin.press_data(data, menu.message_id)
        assert answer is not None and "no longer works" in answer, data
    assert await state_of(admin) == EditPersonaDialog.browsing.state


async def test_an_entry_deleted_meanwhile_is_reported(
    admin: UserChat, db: async_sessionmaker[AsyncSession]
) -> None:
    await admin.send("/edit_bot")
    await add_fact(admin, "ephemeral")
    menu = admin.last
    async with db() as session, session.begin():
        entry = await session.scalar(select(MemoryEntry))
        await session.delete(entry)
    answer = await admin.press("1", menu)
    assert answer is not None and "no longer exists" in answer


async def test_a_user_cannot_edit_a_persona_they_do_not_own(
    start_bot: StartBot, telegram: FakeTelegram, db: async_sessionmaker[AsyncSession]
) -> None:
    bot = await start_bot()
    user = UserChat(bot, telegram, ALLOWED)
    refusal = await user.send("/edit_bot")
    assert "can't edit the persona “Assistant”" in (refusal.text or "")
    assert await state_of(user) is None
    # A forged editor button for the admin's persona opens nothing either.
    persona = await default_persona(db)
    answer = await user.press_data(f"pe:af:{persona.id}:0:0", refusal.message_id)
    assert answer is not None and "no longer works" in answer


async def test_chat_text_in_the_middle_of_the_dialog_is_not_sent_and_explained(
    admin: UserChat, llm: FakeOpenAI
) -> None:
    await admin.send("/edit_bot")
    reply = await admin.send("what is the weather?")
    assert "You are in the persona editor" in (reply.text or "")
    assert "/cancel" in (reply.text or "")
    assert llm.requests == []
    assert await state_of(admin) == EditPersonaDialog.browsing.state


async def test_a_sticker_while_typing_is_explained(admin: UserChat) -> None:
    await admin.send("/edit_bot")
    await admin.press("➕ Fact")
    sticker = {
        "sticker": {
            "file_id": "s",
            "file_unique_id": "s",
            "type": "regular",
            "width": 512,
            "height": 512,
            "is_animated": False,
            "is_video": False,
        }
    }
    reply = await admin.send(None, extra=sticker)
    assert "send the new fact as a text message" in (reply.text or "")
    assert await state_of(admin) == EditPersonaDialog.typing_fact.state


async def test_sharing_can_be_toggled_by_the_owner(
    start_bot: StartBot, telegram: FakeTelegram, db: async_sessionmaker[AsyncSession]
) -> None:
    bot = await start_bot()
    user = UserChat(bot, telegram, ALLOWED)
    await user.send("/new_persona")
    await user.send("Mine")
    await user.send("My own persona.")
    await user.press("Done")
    await user.press("Talk to it now")
    await user.send("/edit_bot")
    await user.press("Share")
    async with db() as session:
        persona = await session.scalar(select(Persona).where(Persona.name == "Mine"))
    assert persona is not None and persona.shared
