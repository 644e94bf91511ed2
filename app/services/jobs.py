"""Plugins' scheduled jobs (reminders): kept in the database, done when due by one process.

One task per process wakes at the next due time (or every `poll` seconds, to see jobs
another replica added, and a test clock moved), claims the due jobs for a minute (row
locks on PostgreSQL, so with several replicas each job goes to one of them) and hands
each to its plugin. Done, a job is deleted; failed, it is tried again later, five times.

Delivery is at least once, not exactly once: a process that dies after the plugin sent
a reminder and before the job is deleted leaves it to be sent again when its lease ends.
The window is the time of one Telegram call."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.db.jobs import JobRepository
from app.db.models import ScheduledJob
from app.domain.jobs import Job

log = logging.getLogger(__name__)

LEASE = timedelta(minutes=1)
BATCH = 20
MAX_ATTEMPTS = 5

Handler = Callable[[Job], Awaitable[None]]


def _aware(moment: datetime) -> datetime:
    # SQLite hands back what it stored (always UTC) without its zone.
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


def _job(row: ScheduledJob) -> Job:
    try:
        payload = json.loads(row.payload)
    except ValueError:
        payload = {}
    return Job(
        id=row.id,
        user_id=row.user_id,
        chat_id=row.chat_id,
        thread_id=row.thread_id,
        due_at=_aware(row.due_at),
        payload=payload if isinstance(payload, dict) else {},
        attempts=row.attempts,
    )


class JobScheduler:
    def __init__(
        self,
        pool: async_sessionmaker[AsyncSession],
        *,
        clock: Callable[[], datetime],
        poll: float = 30.0,
    ) -> None:
        self.pool = pool
        self.clock = clock
        self.poll = poll
        self.handlers: dict[str, Handler] = {}
        self._task: asyncio.Task[None] | None = None
        self._wake = asyncio.Event()

    def handle(self, plugin: str, handler: Handler) -> None:
        self.handlers[plugin] = handler

    def for_plugin(self, plugin: str) -> PluginJobs:
        return PluginJobs(self, plugin)

    # --- the loop ---------------------------------------------------------------------

    def start(self) -> None:
        if self.handlers and self._task is None:
            self._task = asyncio.create_task(self._run(), name="scheduled-jobs")

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    def poke(self) -> None:
        """A job was added: look again now (it may be due sooner than the one awaited)."""
        self._wake.set()

    async def _run(self) -> None:
        failures = 0
        while True:
            try:
                await self.run_due()
                wait = await self._until_next()
                failures = 0
            except SQLAlchemyError as exc:
                failures += 1
                if failures == 1:
                    log.warning("Scheduled jobs not read (%s); trying again", type(exc).__name__)
                wait = min(self.poll, 5.0 * failures)
            self._wake.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), timeout=wait)

    async def _until_next(self) -> float:
        async with self.pool() as session:
            due = await JobRepository(session).next_due(sorted(self.handlers))
        if due is None:
            return self.poll
        return max(0.0, min(self.poll, (_aware(due) - self.clock()).total_seconds()))

    async def run_due(self) -> int:
        """Claim and do the due jobs; how many were done (tests and benches call it)."""
        done = 0
        while True:
            now = self.clock()
            async with self.pool() as session, session.begin():
                rows = await JobRepository(session).claim(sorted(self.handlers), now, LEASE, BATCH)
                jobs = [(row.plugin, _job(row)) for row in rows]
            if not jobs:
                return done
            for plugin, job in jobs:
                done += await self._do(plugin, job)

    async def _do(self, plugin: str, job: Job) -> int:
        handler = self.handlers[plugin]
        try:
            await handler(job)
        except Exception as exc:  # noqa: BLE001 - a plugin's failure is retried, never fatal
            attempts = job.attempts + 1
            async with self.pool() as session, session.begin():
                jobs = JobRepository(session)
                if attempts >= MAX_ATTEMPTS:
                    log.warning(
                        "Job %s of %s failed %d times (%s); dropped",
                        job.id,
                        plugin,
                        attempts,
                        type(exc).__name__,
                    )
                    await jobs.done(job.id)
                else:
                    log.warning(
                        "Job %s of %s failed (%s); tried again later",
                        job.id,
                        plugin,
                        type(exc).__name__,
                    )
                    await jobs.later(job.id, self.clock() + timedelta(minutes=2**attempts))
            return 0
        async with self.pool() as session, session.begin():
            await JobRepository(session).done(job.id)
        return 1


class PluginJobs:
    """One plugin's jobs (`PluginContext.jobs`): only its own, and a user's only theirs."""

    def __init__(self, scheduler: JobScheduler, plugin: str) -> None:
        self.scheduler = scheduler
        self.plugin = plugin

    def on_due(self, handler: Handler) -> None:
        """`handler(job)` does each job when it is due; raising, it is tried again later."""
        self.scheduler.handle(self.plugin, handler)

    async def schedule(
        self,
        *,
        user_id: int,
        chat_id: int,
        due_at: datetime,
        payload: dict[str, Any],
        thread_id: int | None = None,
    ) -> Job:
        if due_at.tzinfo is None:
            raise ValueError("due_at must carry its time zone")
        async with self.scheduler.pool() as session, session.begin():
            row = await JobRepository(session).add(
                plugin=self.plugin,
                user_id=user_id,
                chat_id=chat_id,
                thread_id=thread_id,
                # UTC in the database: SQLite compares the stored text.
                due_at=due_at.astimezone(UTC),
                payload=json.dumps(payload, ensure_ascii=False),
            )
            job = _job(row)
        self.scheduler.poke()
        return job

    async def of_user(self, user_id: int) -> list[Job]:
        async with self.scheduler.pool() as session:
            rows = await JobRepository(session).of_user(self.plugin, user_id)
            return [_job(row) for row in rows]

    async def cancel(self, user_id: int, job_id: int) -> bool:
        async with self.scheduler.pool() as session, session.begin():
            return await JobRepository(session).cancel(self.plugin, user_id, job_id)
