"""The record of handled updates: what to skip, and its housekeeping."""

from __future__ import annotations

from collections import OrderedDict
from datetime import timedelta

from sqlalchemy import Insert, delete, func, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Session

from app.db.models import ProcessedUpdate
from app.domain.clock import utcnow

# Telegram keeps an unconfirmed update for 24 hours; a week is plenty.
KEEP = timedelta(days=7)


async def forget_old_updates(session: AsyncSession) -> None:
    await session.execute(
        delete(ProcessedUpdate).where(ProcessedUpdate.created_at < utcnow() - KEEP)
    )


class ProcessedUpdates:
    """Knows which updates were handled, asking the database only when it must.

    Telegram numbers updates in increasing order. One that is newer than every update
    recorded when this process started cannot have been handled before, unless by this
    process, which remembers what it handled. So only updates at or below that watermark
    (the ones a restart can bring back unconfirmed) are looked up: one query saved on every
    message. That holds while one process serves the bot.

    `shared` (PostgreSQL, or REDIS_URL set: other processes may serve the same bot) trusts
    no watermark, since another process may have recorded any update. On PostgreSQL the
    record is then claimed before the update is handled (`claim`): an INSERT that does
    nothing on conflict, in the session's transaction, so a second process claiming the same
    update waits on the row until the first commits (then skips it) or rolls back (then
    handles it). SQLite cannot claim first (the write gate rolls the session back before it
    writes, and the claim would hold SQLite's one write lock until the user's message is
    stored), so there the record is looked up and written at the first commit; that is as
    far as several processes on one SQLite file go.
    """

    def __init__(self, remember: int = 10_000, *, shared: bool = False) -> None:
        self.watermark: int | None = None  # None until loaded: look everything up
        self.shared = shared
        self._handled: OrderedDict[int, None] = OrderedDict()
        self._remember = remember

    @staticmethod
    def claims_first(session: AsyncSession) -> bool:
        return session.get_bind().dialect.name == "postgresql"

    async def claim(self, session: AsyncSession, update_id: int) -> bool:
        """PostgreSQL: record the update in the session's transaction; False when another
        session recorded it (it waits here while that one's transaction is open)."""
        if update_id in self._handled:
            return False
        claimed = await session.scalar(
            record_statement(session, update_id).returning(ProcessedUpdate.update_id)
        )
        return claimed is not None

    async def load(self, session: AsyncSession) -> None:
        self.watermark = await session.scalar(select(func.max(ProcessedUpdate.update_id))) or 0

    async def handled(self, session: AsyncSession, update_id: int) -> bool:
        if update_id in self._handled:
            return True
        if not self.shared and self.watermark is not None and update_id > self.watermark:
            return False
        return await session.get(ProcessedUpdate, update_id) is not None

    def record(self, update_id: int) -> None:
        self._handled[update_id] = None
        if len(self._handled) > self._remember:
            self._handled.popitem(last=False)


def record_statement(session: AsyncSession | Session, update_id: int) -> Insert:
    """INSERT of the update's record that does nothing when it is there already."""
    row = {"update_id": update_id, "created_at": utcnow()}
    if session.get_bind().dialect.name == "postgresql":
        return postgresql.insert(ProcessedUpdate).values(row).on_conflict_do_nothing()
    return sqlite.insert(ProcessedUpdate).values(row).on_conflict_do_nothing()
