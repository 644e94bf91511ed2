"""Access requests end to end: a stranger asks from /start, admins approve or deny."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.db.models import AccessRequest, User
from app.domain.enums import RequestStatus
from app.keyboards.callbacks import AccessAsk, AccessDecision
from tests.fakes import FakeOpenAI, FakeTelegram
from tests.harness import ADMIN, ALLOWED, STRANGER, RunningBot, StartBot, UserChat, buttons

SECOND_ADMIN = 1001


async def requests(db: async_sessionmaker[AsyncSession]) -> list[tuple[int, RequestStatus]]:
    async with db() as session:
        rows = await session.execute(
            select(AccessRequest.user_id, AccessRequest.status).order_by(AccessRequest.id)
        )
        return [(user_id, status) for user_id, status in rows]


async def has_access(db: async_sessionmaker[AsyncSession], user_id: int) -> bool:
    async with db() as session:
        user = await session.get(User, user_id)
        return user is not None and user.has_access


async def ask_for_access(bot: RunningBot, telegram: FakeTelegram) -> UserChat:
    stranger = UserChat(bot, telegram, STRANGER)
    greeting = await stranger.send("/start")
    assert "Request access" in str(buttons(greeting))
    await stranger.press("Request access")
    return stranger


async def test_a_strangers_request_reaches_the_admin_with_approve_and_deny(
    start_bot: StartBot, telegram: FakeTelegram, db: async_sessionmaker[AsyncSession]
) -> None:
    bot = await start_bot()
    stranger = await ask_for_access(bot, telegram)
    assert "sent to the admins" in (stranger.last.text or "")
    notice = UserChat(bot, telegram, ADMIN).last
    assert str(STRANGER) in (notice.text or "")
    assert [label for label, _ in buttons(notice)] == ["✅ Approve", "❌ Deny"]
    assert await requests(db) == [(STRANGER, RequestStatus.PENDING)]


async def test_asking_again_while_a_request_waits_sends_the_admins_nothing(
    start_bot: StartBot, telegram: FakeTelegram, db: async_sessionmaker[AsyncSession]
) -> None:
    bot = await start_bot()
    stranger = await ask_for_access(bot, telegram)
    admin_messages = len(telegram.sent_messages(ADMIN))
    answer = await stranger.press_data(AccessAsk().pack(), stranger.last.message_id)
    assert answer is not None and "already waiting" in answer
    greeting = await stranger.send("/start")
    assert "waiting for the admins" in (greeting.text or "") and not buttons(greeting)
    assert len(telegram.sent_messages(ADMIN)) == admin_messages
    assert await requests(db) == [(STRANGER, RequestStatus.PENDING)]


async def test_an_approved_user_is_told_and_can_chat_at_once(
    start_bot: StartBot,
    telegram: FakeTelegram,
    llm: FakeOpenAI,
    db: async_sessionmaker[AsyncSession],
) -> None:
    bot = await start_bot()
    stranger = await ask_for_access(bot, telegram)
    admin = UserChat(bot, telegram, ADMIN)
    await admin.press("Approve")
    assert "approved" in (stranger.last.text or "")
    assert "Approved by" in (admin.last.text or "") and not buttons(admin.last)
    assert await has_access(db, STRANGER)
    llm.reply = "Welcome aboard"
    answer = await stranger.send("hello")
    assert "Welcome aboard" in (answer.text or "")


async def test_a_denied_user_is_told_when_they_may_ask_again_and_must_wait(
    start_bot: StartBot, telegram: FakeTelegram, db: async_sessionmaker[AsyncSession]
) -> None:
    bot = await start_bot()
    stranger = await ask_for_access(bot, telegram)
    await UserChat(bot, telegram, ADMIN).press("Deny")
    assert "denied" in (stranger.last.text or "") and "ask again after" in (
        stranger.last.text or ""
    )
    admin_messages = len(telegram.sent_messages(ADMIN))
    greeting = await stranger.send("/start")
    answer = await stranger.press("Request access", greeting)
    assert answer is not None and "ask again after" in answer
    assert len(telegram.sent_messages(ADMIN)) == admin_messages
    assert not await has_access(db, STRANGER)
    assert await requests(db) == [(STRANGER, RequestStatus.DENIED)]


async def test_without_a_cooldown_a_denied_user_may_ask_again(
    start_bot: StartBot,
    make_settings: Callable[..., Any],
    telegram: FakeTelegram,
    db: async_sessionmaker[AsyncSession],
) -> None:
    bot = await start_bot(make_settings(access={"access_request_cooldown_hours": 0}))
    stranger = await ask_for_access(bot, telegram)
    await UserChat(bot, telegram, ADMIN).press("Deny")
    await stranger.press("Request access", await stranger.send("/start"))
    assert await requests(db) == [
        (STRANGER, RequestStatus.DENIED),
        (STRANGER, RequestStatus.PENDING),
    ]


async def test_every_admin_is_told_and_the_first_decision_wins(
    start_bot: StartBot,
    make_settings: Callable[..., Any],
    telegram: FakeTelegram,
    db: async_sessionmaker[AsyncSession],
) -> None:
    bot = await start_bot(make_settings(admins=frozenset({ADMIN, SECOND_ADMIN})))
    stranger = await ask_for_access(bot, telegram)
    first, second = UserChat(bot, telegram, ADMIN), UserChat(bot, telegram, SECOND_ADMIN)
    deny = second.button_data(second.last, "Deny")
    notice_id = second.last.message_id
    await first.press("Approve")
    answer = await second.press_data(deny, notice_id)
    assert answer is not None and "Already approved" in answer
    assert "Approved by" in (second.last.text or "") and not buttons(second.last)
    assert await has_access(db, STRANGER)
    assert "approved" in (stranger.last.text or "")


async def test_a_decision_button_pressed_by_a_non_admin_changes_nothing(
    start_bot: StartBot, telegram: FakeTelegram, db: async_sessionmaker[AsyncSession]
) -> None:
    bot = await start_bot()
    stranger = await ask_for_access(bot, telegram)
    request_id = 1
    forged = AccessDecision(request_id=request_id, approve=True).pack()
    for user_id in (ALLOWED, STRANGER):
        chat = UserChat(bot, telegram, user_id)
        await chat.send("/start")
        answer = await chat.press_data(forged, chat.last.message_id)
        assert answer is not None and "no longer works" in answer
    assert await requests(db) == [(STRANGER, RequestStatus.PENDING)]
    assert not await has_access(db, STRANGER)
    assert not any("approved" in (m.text or "") for m in stranger.messages)


async def test_a_blocked_user_cannot_ask(
    start_bot: StartBot, telegram: FakeTelegram, db: async_sessionmaker[AsyncSession]
) -> None:
    bot = await start_bot()
    stranger = UserChat(bot, telegram, STRANGER)
    await stranger.send("/start")
    async with db() as session, session.begin():
        user = await session.get(User, STRANGER)
        assert user is not None
        user.blocked = True
    greeting = await stranger.send("/start")
    assert "blocked" in (greeting.text or "") and not buttons(greeting)
    answer = await stranger.press_data(AccessAsk().pack(), greeting.message_id)
    assert answer is not None and "blocked" in answer
    assert "blocked" in ((await stranger.send("hello")).text or "")
    assert await requests(db) == []


async def test_without_admins_a_stranger_is_told_to_ask_the_owner(
    start_bot: StartBot,
    make_settings: Callable[..., Any],
    telegram: FakeTelegram,
    db: async_sessionmaker[AsyncSession],
) -> None:
    bot = await start_bot(make_settings(admins=frozenset()))
    greeting = await UserChat(bot, telegram, STRANGER).send("/start")
    assert "no admins" in (greeting.text or "") and not buttons(greeting)
    assert await requests(db) == []


async def test_the_admin_gets_the_request_in_their_language(
    start_bot: StartBot, telegram: FakeTelegram
) -> None:
    bot = await start_bot()
    # The admin's Telegram speaks Russian: the bot learns it from the admin's message.
    telegram.push_message(ADMIN, "/help", language_code="ru")
    await bot.idle()
    await ask_for_access(bot, telegram)
    notice = UserChat(bot, telegram, ADMIN).last
    assert str(STRANGER) in (notice.text or "")
    assert "Approve" not in str(buttons(notice))
