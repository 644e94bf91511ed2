"""The record of handled updates: what to skip, and its housekeeping."""

from __future__ import annotations

from collections import OrderedDict
from datetime import timedelta

from sqlalchemy import delete, func, select
from sqlalchemy.ext.asyncio import AsyncSession

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
    message. One process per bot, as the per-user ordering lock already assumes.
    """

    def __init__(self, remember: int = 10_000) -> None:
        self.watermark: int | None = None  # None until loaded: look everything up
        self._handled: OrderedDict[int, None] = OrderedDict()
        self._remember = remember

    async def load(self, session: AsyncSession) -> None:
        self.watermark = await session.scalar(select(func.max(ProcessedUpdate.update_id))) or 0

    async def handled(self, session: AsyncSession, update_id: int) -> bool:
        if update_id in self._handled:
            return True
        if self.watermark is not None and update_id > self.watermark:
            return False
        return await session.get(ProcessedUpdate, update_id) is not None

    def record(self, update_id: int) -> None:
        self._handled[update_id] = None
        if len(self._handled) > self._remember:
            self._handled.popitem(last=False)
