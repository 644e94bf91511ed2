"""Every command and every button, tried by a user who lacks the right it needs: refused
with a clear answer, and nothing changes."""

from __future__ import annotations

import inspect

import pytest
from aiogram.filters.callback_data import CallbackData
from aiogram.fsm.state import StatesGroup
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app import commands
from app.db.models import AccessRequest, Message, Persona, User
from app.domain.enums import MemoryMode
from app.domain.rights import Right
from app.fsm import conversations, groups, personas, profile, settings, users
from app.fsm.rights import DIALOG_RIGHTS
from app.keyboards import callbacks
from app.keyboards.callbacks import (
    AccessAsk,
    AccessDecision,
    ChatsAction,
    ChatsButton,
    ContinueButton,
    EditorAction,
    EditorButton,
    EntryAction,
    EntryButton,
    ForgetAllButton,
    ForgetButton,
    ForgetStep,
    GroupCard,
    GroupCardAction,
    GroupDecision,
    GroupPersona,
    GroupsButton,
    GroupSetting,
    ModeChoice,
    NewPersonaAction,
    NewPersonaButton,
    PersonaChoice,
    ProfileAction,
    ProfileButton,
    SettingsButton,
    SettingsSection,
    UsersAction,
    UsersButton,
)
from tests.fakes import FakeOpenAI, FakeTelegram
from tests.harness import ALLOWED, STRANGER, RunningBot, StartBot, UserChat

RESTRICTED = ALLOWED  # may chat, but has neither persona right

# A button of every kind, and the right it needs. AccessAsk is for users without access.
BUTTONS: dict[type[CallbackData], tuple[CallbackData, Right]] = {
    EditorButton: (EditorButton(action=EditorAction.SHARE, persona_id=1), Right.EDIT_PERSONAS),
    EntryButton: (
        EntryButton(action=EntryAction.DELETE_YES, persona_id=1, entry_id=1),
        Right.EDIT_PERSONAS,
    ),
    NewPersonaButton: (NewPersonaButton(action=NewPersonaAction.DONE), Right.CREATE_PERSONAS),
    PersonaChoice: (PersonaChoice(persona_id=1), Right.CHAT),
    ModeChoice: (ModeChoice(mode=MemoryMode.TASK), Right.CHAT),
    ForgetButton: (ForgetButton(conversation_id=1, confirm=True), Right.CHAT),
    ForgetAllButton: (ForgetAllButton(step=ForgetStep.YES), Right.CHAT),
    ProfileButton: (ProfileButton(action=ProfileAction.DELETE, fact_id=1), Right.CHAT),
    ContinueButton: (ContinueButton(answer_id=1), Right.CHAT),
    ChatsButton: (ChatsButton(action=ChatsAction.DELETE_YES, conversation_id=1), Right.CHAT),
    SettingsButton: (SettingsButton(section=SettingsSection.LENGTH, value="long"), Right.CHAT),
    AccessDecision: (AccessDecision(request_id=1, approve=True), Right.ADMIN),
    GroupDecision: (GroupDecision(chat_id=-100, approve=True), Right.ADMIN),
    GroupsButton: (GroupsButton(chat_id=-100, allow=True), Right.ADMIN),
    GroupPersona: (GroupPersona(chat_id=-100, persona_id=1), Right.ADMIN),
    GroupCard: (
        GroupCard(chat_id=-100, action=GroupCardAction.MEMBERS, value="allowed"),
        Right.ADMIN,
    ),
    UsersButton: (
        UsersButton(action=UsersAction.GRANT, user_id=RESTRICTED, value="admin"),
        Right.ADMIN,
    ),
}


def test_every_button_kind_is_tried() -> None:
    defined = {
        cls
        for _, cls in inspect.getmembers(callbacks, inspect.isclass)
        if issubclass(cls, CallbackData) and cls is not CallbackData
    }
    # GroupSetting is for a group's own admins, as Telegram says on each press: its refusals
    # are tried in tests/e2e/test_groups.py.
    assert defined == set(BUTTONS) | {AccessAsk, GroupSetting}


def test_every_command_names_its_right() -> None:
    # A command with no right is open to everyone, strangers included: only these.
    assert {c.name for c in commands.COMMANDS if c.right is None} == {"start", "help", "cancel"}


async def snapshot(db: async_sessionmaker[AsyncSession], user_id: int) -> tuple[object, ...]:
    """Everything a refused command or button could have changed."""
    async with db() as session:
        user = await session.get(User, user_id)
        assert user is not None
        counts = [
            await session.scalar(select(func.count()).select_from(table))
            for table in (Persona, Message, AccessRequest)
        ]
        persona = await session.get(Persona, 1)
        return (
            user.role,
            user.has_access,
            user.blocked,
            user.persona_id,
            user.memory_mode,
            user.answer_length,
            persona.shared if persona else None,
            *counts,
        )


async def restricted_bot(
    start_bot: StartBot, telegram: FakeTelegram, db: async_sessionmaker[AsyncSession]
) -> RunningBot:
    bot = await start_bot()
    for user_id in (RESTRICTED, STRANGER):
        await UserChat(bot, telegram, user_id).send("/start")
    async with db() as session, session.begin():
        user = await session.get(User, RESTRICTED)
        assert user is not None
        user.can_create_personas = user.can_edit_personas = False
    return bot


def lacking(right: Right) -> int:
    return STRANGER if right is Right.CHAT else RESTRICTED


def refusal(command: commands.CommandInfo) -> str:
    if command.right is Right.ADMIN:
        return "I don't know that command"
    if command.right is Right.CHAT:
        return "/start lets you ask the admins"
    return f"You may not use /{command.name}"


@pytest.mark.parametrize(
    "command", [c for c in commands.COMMANDS if c.right is not None], ids=lambda c: c.name
)
async def test_a_command_without_its_right_is_refused(
    command: commands.CommandInfo,
    start_bot: StartBot,
    telegram: FakeTelegram,
    llm: FakeOpenAI,
    db: async_sessionmaker[AsyncSession],
) -> None:
    assert command.right is not None
    bot = await restricted_bot(start_bot, telegram, db)
    user_id = lacking(command.right)
    chat = UserChat(bot, telegram, user_id)
    before = await snapshot(db, user_id)
    answer = await chat.send(f"/{command.name}")
    assert refusal(command) in (answer.text or "")
    assert await snapshot(db, user_id) == before
    assert llm.requests == []
    # No dialog was entered: the next message is refused the same way, not taken by one.
    assert bot.dp is not None and bot.bot is not None
    assert await bot.dp.fsm.get_context(bot.bot, user_id, user_id).get_state() is None


@pytest.mark.parametrize("kind", list(BUTTONS), ids=lambda kind: kind.__name__)
async def test_a_button_without_its_right_is_refused(
    kind: type[CallbackData],
    start_bot: StartBot,
    telegram: FakeTelegram,
    llm: FakeOpenAI,
    db: async_sessionmaker[AsyncSession],
) -> None:
    button, right = BUTTONS[kind]
    bot = await restricted_bot(start_bot, telegram, db)
    user_id = lacking(right)
    chat = UserChat(bot, telegram, user_id)
    message = await chat.send("/start")
    before = await snapshot(db, user_id)
    answer = await chat.press_data(button.pack(), message.message_id)
    assert answer is not None and "no longer works" in answer
    assert await snapshot(db, user_id) == before
    assert llm.requests == []


async def test_the_request_button_is_for_strangers_only(
    start_bot: StartBot, telegram: FakeTelegram, db: async_sessionmaker[AsyncSession]
) -> None:
    bot = await restricted_bot(start_bot, telegram, db)
    chat = UserChat(bot, telegram, RESTRICTED)
    message = await chat.send("/start")
    answer = await chat.press_data(AccessAsk().pack(), message.message_id)
    assert answer is not None and "no longer works" in answer
    async with db() as session:
        assert await session.scalar(select(func.count()).select_from(AccessRequest)) == 0


async def test_help_lists_only_what_the_user_may_use(
    start_bot: StartBot, telegram: FakeTelegram, db: async_sessionmaker[AsyncSession]
) -> None:
    bot = await start_bot()
    await UserChat(bot, telegram, RESTRICTED).send("/start")
    async with db() as session, session.begin():
        user = await session.get(User, RESTRICTED)
        assert user is not None
        user.can_create_personas = False
    text = (await UserChat(bot, telegram, RESTRICTED).send("/help")).text or ""
    assert "/edit_bot" in text and "/settings" in text
    assert "/new_persona" not in text and "/import_persona" not in text and "/users" not in text


def test_every_dialog_names_its_right() -> None:
    dialogs = {
        cls
        for module in (personas, settings, users, conversations, groups, profile)
        for _, cls in inspect.getmembers(module, inspect.isclass)
        if issubclass(cls, StatesGroup) and cls is not StatesGroup
    }
    assert dialogs == set(DIALOG_RIGHTS)
