"""/users end to end: admins manage access, rights, personas and budgets from Telegram."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.db.models import Persona, User
from app.domain.enums import BudgetUnit, Role
from app.keyboards.callbacks import UsersAction, UsersButton
from tests.fakes import FakeOpenAI, FakeTelegram
from tests.harness import ADMIN, ALLOWED, STRANGER, RunningBot, StartBot, UserChat, buttons


async def stored(db: async_sessionmaker[AsyncSession], user_id: int) -> User:
    async with db() as session:
        user = await session.get(User, user_id)
        assert user is not None
        return user


async def open_user(bot: RunningBot, telegram: FakeTelegram, user_id: int) -> UserChat:
    """The admin opens /users and the card of `user_id` (who must have written)."""
    admin = UserChat(bot, telegram, ADMIN)
    listing = await admin.send("/users")
    data = UsersButton(action=UsersAction.OPEN, user_id=user_id).pack()
    assert data in [value for _, value in buttons(listing)]
    await admin.press_data(data, listing.message_id)
    assert f"<code>{user_id}</code>" in (admin.last.text or "")
    return admin


async def test_the_list_shows_each_user_with_status_and_persona(
    start_bot: StartBot, telegram: FakeTelegram
) -> None:
    bot = await start_bot()
    await UserChat(bot, telegram, STRANGER).send("/start")
    listing = await UserChat(bot, telegram, ADMIN).send("/users")
    text = listing.text or ""
    assert "<b>Users</b> · 3" in text
    assert f"<code>{STRANGER}</code> · no access" in text
    assert f"<code>{ALLOWED}</code> · allowed" in text
    assert f"<code>{ADMIN}</code> · admin" in text


async def test_for_everyone_else_users_is_an_unknown_command(
    start_bot: StartBot, telegram: FakeTelegram
) -> None:
    bot = await start_bot()
    for user_id in (ALLOWED, STRANGER):
        answer = await UserChat(bot, telegram, user_id).send("/users")
        assert "I don't know that command" in (answer.text or "")


async def test_allowing_a_stranger_tells_them_and_lets_them_chat(
    start_bot: StartBot,
    telegram: FakeTelegram,
    llm: FakeOpenAI,
    db: async_sessionmaker[AsyncSession],
) -> None:
    bot = await start_bot()
    stranger = UserChat(bot, telegram, STRANGER)
    await stranger.send("/start")
    admin = await open_user(bot, telegram, STRANGER)
    await admin.press("Allow")
    assert "Status: allowed" in (admin.last.text or "")
    assert "given you access" in (stranger.last.text or "")
    assert (await stored(db, STRANGER)).has_access
    llm.reply = "Hi there"
    assert "Hi there" in ((await stranger.send("hello")).text or "")


async def test_a_blocked_user_gets_nothing_from_the_model(
    start_bot: StartBot,
    telegram: FakeTelegram,
    llm: FakeOpenAI,
    db: async_sessionmaker[AsyncSession],
) -> None:
    bot = await start_bot()
    user = UserChat(bot, telegram, ALLOWED)
    await user.send("/start")
    admin = await open_user(bot, telegram, ALLOWED)
    await admin.press("Block")
    assert "Status: blocked" in (admin.last.text or "")
    requests = len(llm.requests)
    answer = await user.send("hello?")
    assert "blocked" in (answer.text or "")
    assert len(llm.requests) == requests
    assert (await stored(db, ALLOWED)).blocked


async def test_a_revoked_right_closes_its_command(
    start_bot: StartBot, telegram: FakeTelegram, db: async_sessionmaker[AsyncSession]
) -> None:
    bot = await start_bot()
    user = UserChat(bot, telegram, ALLOWED)
    await user.send("/start")
    admin = await open_user(bot, telegram, ALLOWED)
    await admin.press("✓ Create personas")
    assert not (await stored(db, ALLOWED)).can_create_personas
    answer = await user.send("/new_persona")
    assert "You may not use /new_persona" in (answer.text or "")
    await admin.press("✗ Create personas")
    assert "New persona" in ((await user.send("/new_persona")).text or "")


async def test_an_admin_listed_in_the_settings_cannot_be_blocked_or_demoted(
    start_bot: StartBot, telegram: FakeTelegram, db: async_sessionmaker[AsyncSession]
) -> None:
    bot = await start_bot()
    admin = await open_user(bot, telegram, ADMIN)
    assert "Block" not in str(buttons(admin.last))
    answer = await admin.press("✓ Admin")
    assert answer is not None and "ADMIN_IDS" in answer
    forged = UsersButton(action=UsersAction.BLOCK, user_id=ADMIN).pack()
    answer = await admin.press_data(forged, admin.last.message_id)
    assert answer is not None and "ADMIN_IDS" in answer
    user = await stored(db, ADMIN)
    assert user.role is Role.ADMIN and not user.blocked


async def test_granting_admin_gives_the_users_command(
    start_bot: StartBot, telegram: FakeTelegram
) -> None:
    bot = await start_bot()
    user = UserChat(bot, telegram, ALLOWED)
    await user.send("/start")
    admin = await open_user(bot, telegram, ALLOWED)
    await admin.press("✗ Admin")
    assert "Status: admin" in (admin.last.text or "")
    assert "<b>Users</b>" in ((await user.send("/users")).text or "")
    scope = {"type": "chat", "chat_id": ALLOWED}
    for language in ("", "ru"):
        menu = telegram.commands(scope, language)
        assert "users" in [command["command"] for command in menu]
    await admin.press("✓ Admin")
    assert telegram.commands(scope) == [] and telegram.commands(scope, "ru") == []
    assert "I don't know that command" in ((await user.send("/users")).text or "")


async def test_an_admin_assigns_a_persona(
    start_bot: StartBot, telegram: FakeTelegram, db: async_sessionmaker[AsyncSession]
) -> None:
    bot = await start_bot()
    await UserChat(bot, telegram, ALLOWED).send("/start")
    async with db() as session, session.begin():
        session.add(Persona(name="Pirate", system_prompt="Arr.", system_message_tokens=5))
    admin = await open_user(bot, telegram, ALLOWED)
    await admin.press("Persona")
    await admin.press("Pirate")
    assert "Persona: Pirate" in (admin.last.text or "")
    async with db() as session:
        user = await session.get(User, ALLOWED)
        persona = await session.get(Persona, user.persona_id if user else 0)
        assert persona is not None and persona.name == "Pirate"


async def test_an_admin_sets_a_daily_token_limit_by_typing_it(
    start_bot: StartBot, telegram: FakeTelegram, db: async_sessionmaker[AsyncSession]
) -> None:
    bot = await start_bot()
    await UserChat(bot, telegram, ALLOWED).send("/start")
    admin = await open_user(bot, telegram, ALLOWED)
    await admin.press("Budget")
    await admin.press("Tokens")
    await admin.press("Daily limit")
    assert "daily limit" in (admin.last.text or "")
    for wrong in ("lots", "-5", "1.5"):
        assert "not a limit" in ((await admin.send(wrong)).text or "")
    screen = await admin.send("50,000")
    assert "50,000 tokens a day" in (screen.text or "")
    user = await stored(db, ALLOWED)
    assert (user.budget_unit, user.budget_daily, user.budget_monthly) == (
        BudgetUnit.TOKENS,
        50_000,
        None,
    )
    await admin.press("Owner's default")
    user = await stored(db, ALLOWED)
    assert (user.budget_unit, user.budget_daily) == (None, None)


async def test_the_list_is_paged(
    start_bot: StartBot, telegram: FakeTelegram, db: async_sessionmaker[AsyncSession]
) -> None:
    bot = await start_bot()
    async with db() as session, session.begin():
        session.add_all(User(id=5000 + n, first_name=f"User{n}") for n in range(10))
    admin = UserChat(bot, telegram, ADMIN)
    listing = await admin.send("/users")
    assert "page 1 of 2" in (listing.text or "")
    await admin.press("›")
    assert "page 2 of 2" in (admin.last.text or "")
    await admin.press("‹")
    assert "page 1 of 2" in (admin.last.text or "")


async def test_users_buttons_pressed_by_a_non_admin_do_nothing(
    start_bot: StartBot, telegram: FakeTelegram, db: async_sessionmaker[AsyncSession]
) -> None:
    bot = await start_bot()
    user = UserChat(bot, telegram, ALLOWED)
    message = await user.send("/start")
    for action, value in (
        (UsersAction.GRANT, "admin"),
        (UsersAction.ALLOW, ""),
        (UsersAction.BLOCK, ""),
        (UsersAction.LIST, ""),
    ):
        data = UsersButton(action=action, user_id=ALLOWED, value=value).pack()
        answer = await user.press_data(data, message.message_id)
        assert answer is not None and "no longer works" in answer
    stored_user = await stored(db, ALLOWED)
    assert stored_user.role is Role.USER and not stored_user.blocked


async def test_malformed_users_buttons_get_an_answer(
    start_bot: StartBot, telegram: FakeTelegram
) -> None:
    bot = await start_bot()
    await UserChat(bot, telegram, ALLOWED).send("/start")
    admin = UserChat(bot, telegram, ADMIN)
    listing = await admin.send("/users")
    for action, user_id, value in (
        (UsersAction.GRANT, ALLOWED, "wizard"),
        (UsersAction.SET_PERSONA, ALLOWED, "x"),
        (UsersAction.UNIT, ALLOWED, "gold"),
        (UsersAction.LIMIT, ALLOWED, "weekly"),
        (UsersAction.OPEN, 999_999, ""),
    ):
        data = UsersButton(action=action, user_id=user_id, value=value).pack()
        assert await admin.press_data(data, listing.message_id) is not None
    answer = await admin.press_data("us:nonsense", listing.message_id)
    assert answer is not None


async def test_an_admin_made_in_the_database_gets_the_admin_menu_at_start(
    start_bot: StartBot, telegram: FakeTelegram, db: async_sessionmaker[AsyncSession]
) -> None:
    first = await start_bot()
    await UserChat(first, telegram, ALLOWED).send("/start")
    await first.stop()
    async with db() as session, session.begin():
        user = await session.get(User, ALLOWED)
        assert user is not None
        user.role = Role.ADMIN
    await start_bot()
    menu = telegram.commands({"type": "chat", "chat_id": ALLOWED})
    assert "users" in [command["command"] for command in menu]


async def test_a_revoked_right_closes_the_dialog_the_user_is_in(
    start_bot: StartBot, telegram: FakeTelegram, llm: FakeOpenAI
) -> None:
    bot = await start_bot()
    user = UserChat(bot, telegram, ALLOWED)
    assert "New persona" in ((await user.send("/new_persona")).text or "")
    admin = await open_user(bot, telegram, ALLOWED)
    await admin.press("✓ Create personas")
    assert bot.dp is not None and bot.bot is not None
    assert await bot.dp.fsm.get_context(bot.bot, ALLOWED, ALLOWED).get_state() is None
    # What they type next is a chat message again, not a persona's name.
    llm.reply = "Sure"
    assert "Sure" in ((await user.send("Pirate")).text or "")
