"""Scheduled jobs with several processes (issue 15): two schedulers on one database, as
two replicas would run, each do a share of the due jobs and no job twice; a failing job is
tried again later and dropped after five attempts. On SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
from collections import Counter
from datetime import UTC, datetime, timedelta

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.db.engine import create_engine, create_sessionmaker
from app.db.models import ScheduledJob, User
from app.domain.jobs import Job
from app.services.jobs import MAX_ATTEMPTS, JobScheduler

NOW = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)


async def _users(pool: async_sessionmaker[AsyncSession]) -> None:
    async with pool() as session, session.begin():
        session.add(User(id=1, first_name="A"))


async def test_two_schedulers_do_each_due_job_once(
    pool: async_sessionmaker[AsyncSession], database_url: str
) -> None:
    await _users(pool)
    done: Counter[int] = Counter()
    # A second process: its own engine and pool on the same database.
    other_engine = create_engine(database_url)
    other_pool = create_sessionmaker(other_engine)
    schedulers = [
        JobScheduler(pool, clock=lambda: NOW),
        JobScheduler(other_pool, clock=lambda: NOW),
    ]

    async def handler(job: Job) -> None:
        done[job.id] += 1
        await asyncio.sleep(0.005)  # a Telegram call's worth of time, for the other to race

    for scheduler in schedulers:
        scheduler.handle("reminders", handler)
    jobs = schedulers[0].for_plugin("reminders")
    for minute in range(60):
        await jobs.schedule(
            user_id=1, chat_id=1, due_at=NOW - timedelta(minutes=minute), payload={"n": minute}
        )
    # Not due yet: never done.
    later = await jobs.schedule(user_id=1, chat_id=1, due_at=NOW + timedelta(hours=1), payload={})
    try:
        counts = await asyncio.gather(*(s.run_due() for s in schedulers))
    finally:
        await other_engine.dispose()
    assert sum(counts) == 60
    assert len(done) == 60 and set(done.values()) == {1}
    assert later.id not in done
    async with pool() as session:
        left = await session.scalar(select(func.count()).select_from(ScheduledJob))
    assert left == 1


async def test_a_failing_job_is_tried_again_later_then_dropped(
    pool: async_sessionmaker[AsyncSession],
) -> None:
    await _users(pool)
    clock = [NOW]
    scheduler = JobScheduler(pool, clock=lambda: clock[0])
    tries: list[int] = []

    async def handler(job: Job) -> None:
        tries.append(job.attempts)
        raise ConnectionError("Telegram is away")

    scheduler.handle("reminders", handler)
    await scheduler.for_plugin("reminders").schedule(user_id=1, chat_id=1, due_at=NOW, payload={})
    for _ in range(MAX_ATTEMPTS):
        assert await scheduler.run_due() == 0
        assert await scheduler.run_due() == 0  # put off: not due again at once
        clock[0] += timedelta(hours=1)
    assert tries == list(range(MAX_ATTEMPTS))
    async with pool() as session:
        assert await session.scalar(select(func.count()).select_from(ScheduledJob)) == 0


async def test_a_job_of_another_user_is_neither_listed_nor_cancelled(
    pool: async_sessionmaker[AsyncSession],
) -> None:
    async with pool() as session, session.begin():
        session.add_all([User(id=1, first_name="A"), User(id=2, first_name="B")])
    jobs = JobScheduler(pool, clock=lambda: NOW).for_plugin("reminders")
    mine = await jobs.schedule(user_id=1, chat_id=1, due_at=NOW, payload={"t": "x"})
    assert await jobs.of_user(2) == []
    assert not await jobs.cancel(2, mine.id)
    assert [job.id for job in await jobs.of_user(1)] == [mine.id]
    # Another plugin's jobs are its own too.
    assert await JobScheduler(pool, clock=lambda: NOW).for_plugin("dice").of_user(1) == []
