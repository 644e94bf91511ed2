"""Scheduled jobs (app/db/models.py ScheduledJob): kept, claimed when due, done or put off."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta

from sqlalchemy import delete, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from app.db.models import ScheduledJob


class JobRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def add(
        self,
        *,
        plugin: str,
        user_id: int,
        chat_id: int,
        thread_id: int | None,
        due_at: datetime,
        payload: str,
    ) -> ScheduledJob:
        job = ScheduledJob(
            plugin=plugin,
            user_id=user_id,
            chat_id=chat_id,
            thread_id=thread_id,
            due_at=due_at,
            payload=payload,
        )
        self.session.add(job)
        await self.session.flush()
        return job

    async def of_user(self, plugin: str, user_id: int) -> Sequence[ScheduledJob]:
        """The user's jobs of a plugin, soonest first."""
        result = await self.session.scalars(
            select(ScheduledJob)
            .where(ScheduledJob.plugin == plugin, ScheduledJob.user_id == user_id)
            .order_by(ScheduledJob.due_at, ScheduledJob.id)
        )
        return result.all()

    async def cancel(self, plugin: str, user_id: int, job_id: int) -> bool:
        """Delete the user's job; False when it is not theirs, or gone (done, cancelled)."""
        result = await self.session.execute(
            delete(ScheduledJob).where(
                ScheduledJob.id == job_id,
                ScheduledJob.plugin == plugin,
                ScheduledJob.user_id == user_id,
            )
        )
        return bool(result.rowcount)  # type: ignore[attr-defined]

    async def claim(
        self, plugins: Sequence[str], now: datetime, lease: timedelta, limit: int
    ) -> list[ScheduledJob]:
        """Due jobs of these plugins, leased to the caller until `now + lease`: no other
        process takes them meanwhile. On PostgreSQL the rows are locked while they are
        claimed and rows another process is claiming are skipped (FOR UPDATE SKIP LOCKED);
        SQLite has one writer at a time anyway. Commit right after, to hold the lease."""
        free = or_(ScheduledJob.leased_until.is_(None), ScheduledJob.leased_until < now)
        due = (
            select(ScheduledJob.id)
            .where(ScheduledJob.plugin.in_(plugins), ScheduledJob.due_at <= now, free)
            .order_by(ScheduledJob.due_at)
            .limit(limit)
            .with_for_update(skip_locked=True)
        )
        ids = list((await self.session.scalars(due)).all())
        if not ids:
            return []
        # The lease is taken only where it is still free: a process that read the same ids
        # a moment earlier (no row locks on SQLite) takes none of them twice.
        claimed = await self.session.scalars(
            update(ScheduledJob)
            .where(ScheduledJob.id.in_(ids), free)
            .values(leased_until=now + lease)
            .returning(ScheduledJob)
        )
        return list(claimed.all())

    async def done(self, job_id: int) -> None:
        await self.session.execute(delete(ScheduledJob).where(ScheduledJob.id == job_id))

    async def later(self, job_id: int, due_at: datetime) -> None:
        """A failed attempt: tried again at `due_at`."""
        await self.session.execute(
            update(ScheduledJob)
            .where(ScheduledJob.id == job_id)
            .values(due_at=due_at, leased_until=None, attempts=ScheduledJob.attempts + 1)
        )

    async def next_due(self, plugins: Sequence[str]) -> datetime | None:
        return await self.session.scalar(
            select(ScheduledJob.due_at)
            .where(ScheduledJob.plugin.in_(plugins))
            .order_by(ScheduledJob.due_at)
            .limit(1)
        )
