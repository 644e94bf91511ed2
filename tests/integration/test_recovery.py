"""Interrupted answers (app/services/recovery.py) on SQLite and PostgreSQL, against the fake
Telegram server: who is told, once, in which language, and what waits for a later sweep.
(The whole path, a process SIGKILLed mid-answer, is in tests/e2e/test_process.py and
tests/e2e/test_replicas_e2e.py.)"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import timedelta

import pytest
from aiogram import Bot
from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.db.models import Conversation, PendingAnswer, Persona, User
from app.delivery.session import create_session
from app.domain.clock import utcnow
from app.i18n import create_i18n
from app.services.recovery import InterruptedAnswers
from tests.fakes import FakeTelegram
from tests.harness import ALLOWED, TOKEN

OTHER = ALLOWED + 1


@pytest.fixture
async def bot(telegram: FakeTelegram) -> AsyncIterator[Bot]:
    bot = Bot(TOKEN, session=create_session(telegram.base_url))
    yield bot
    await bot.session.close()


def replica(
    pool: async_sessionmaker[AsyncSession], *, stale_after: float = 1.0
) -> InterruptedAnswers:
    return InterruptedAnswers(pool, create_i18n(), shared=True, stale_after=stale_after)


async def conversation_of(
    pool: async_sessionmaker[AsyncSession], user_id: int, language: str | None = None
) -> int:
    async with pool() as session, session.begin():
        persona = await session.scalar(select(Persona).where(Persona.name == "Recovery"))
        if persona is None:
            persona = Persona(name="Recovery", system_prompt="You help.")
            session.add(persona)
        session.add(User(id=user_id, first_name="U", language=language))
        await session.flush()
        conversation = Conversation(user_id=user_id, persona_id=persona.id)
        session.add(conversation)
        await session.flush()
        return conversation.id


async def begin(
    pool: async_sessionmaker[AsyncSession],
    writer: InterruptedAnswers,
    conversation_id: int,
    user_id: int,
    *,
    reply_to: int | None = 42,
) -> None:
    async with pool() as session, session.begin():
        writer.begin(
            session,
            conversation_id=conversation_id,
            user_id=user_id,
            chat_id=user_id,
            reply_to=reply_to,
        )


async def age(pool: async_sessionmaker[AsyncSession], seconds: float) -> None:
    """Every heartbeat `seconds` older, as if that long had passed without one."""
    async with pool() as session, session.begin():
        await session.execute(
            update(PendingAnswer).values(heartbeat_at=utcnow() - timedelta(seconds=seconds))
        )


async def left(pool: async_sessionmaker[AsyncSession]) -> list[str]:
    async with pool() as session:
        return list((await session.scalars(select(PendingAnswer.owner))).all())


async def test_an_answer_whose_writer_went_silent_is_told_once_as_a_reply(
    pool: async_sessionmaker[AsyncSession], telegram: FakeTelegram, bot: Bot
) -> None:
    conversation = await conversation_of(pool, ALLOWED)
    dead, first, second = replica(pool), replica(pool), replica(pool)
    await begin(pool, dead, conversation, ALLOWED)
    await age(pool, 5)
    # Two replicas sweep at the same moment: one takes the answer, the other finds it taken.
    told = await asyncio.gather(first.sweep(bot), second.sweep(bot))
    assert sorted(told) == [0, 1]
    [note] = telegram.sent_messages(ALLOWED)
    assert "/retry" in (note.text or "")
    [call] = telegram.calls_of("sendMessage", ALLOWED)
    assert call.params["reply_parameters"]["message_id"] == 42
    assert await left(pool) == []
    assert await first.sweep(bot) == 0


async def test_a_live_writer_keeps_its_answer_with_its_heartbeat(
    pool: async_sessionmaker[AsyncSession], telegram: FakeTelegram, bot: Bot
) -> None:
    conversation = await conversation_of(pool, ALLOWED)
    writer, other = replica(pool), replica(pool)
    await begin(pool, writer, conversation, ALLOWED)
    await age(pool, 5)
    await writer.beat()  # still writing it
    assert await other.sweep(bot) == 0
    assert await writer.sweep(bot) == 0  # its own, in progress
    assert telegram.sent_messages(ALLOWED) == []
    assert await left(pool) == [writer.owner]

    # Settled: gone, and nothing to beat.
    async with pool() as session, session.begin():
        await writer.end(session, conversation)
    assert await left(pool) == []
    assert not writer.writing(conversation)


async def test_the_only_process_tells_at_start_about_what_its_previous_run_left(
    pool: async_sessionmaker[AsyncSession], telegram: FakeTelegram, bot: Bot
) -> None:
    """Alone (SQLite, no Redis) nothing else can be writing: no need to wait for staleness."""
    conversation = await conversation_of(pool, ALLOWED, language="ru")
    await begin(pool, replica(pool), conversation, ALLOWED, reply_to=None)
    alone = InterruptedAnswers(pool, create_i18n(), shared=False, stale_after=30)
    await alone.start(bot)
    try:
        [note] = telegram.sent_messages(ALLOWED)
    finally:
        await alone.close()
    assert "/retry" in (note.text or "") and "оборвался" in (note.text or "")  # in Russian
    [call] = telegram.calls_of("sendMessage", ALLOWED)
    assert call.params.get("reply_parameters") is None
    assert await left(pool) == []


async def test_a_user_who_blocked_the_bot_is_forgotten_and_a_telegram_outage_waits(
    pool: async_sessionmaker[AsyncSession], telegram: FakeTelegram, bot: Bot
) -> None:
    blocked, waiting = await conversation_of(pool, ALLOWED), await conversation_of(pool, OTHER)
    dead, sweeper = replica(pool), replica(pool)
    await begin(pool, dead, blocked, ALLOWED)
    await begin(pool, dead, waiting, OTHER)
    await age(pool, 5)
    telegram.fail_next(
        "sendMessage",
        status=403,
        description="Forbidden: bot was blocked by the user",
        chat_id=ALLOWED,
    )
    telegram.fail_next("sendMessage", status=500, times=10, chat_id=OTHER)  # past the retries
    assert await sweeper.sweep(bot) == 1  # the blocked user: nothing more can be done
    assert await left(pool) == [sweeper.owner]  # the other, taken, for a later sweep
    assert telegram.sent_messages(OTHER) == []

    telegram.clear_faults()  # Telegram is back
    await age(pool, 5)
    assert await replica(pool).sweep(bot) == 1
    assert len(telegram.sent_messages(OTHER)) == 1
    assert await left(pool) == []
