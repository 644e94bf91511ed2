"""Housekeeping of the record of handled updates."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import delete
from sqlalchemy.ext.asyncio import AsyncSession

from app.db.models import ProcessedUpdate, utcnow

# Telegram keeps an unconfirmed update for 24 hours; a week is plenty.
KEEP = timedelta(days=7)


async def forget_old_updates(session: AsyncSession) -> None:
    await session.execute(
        delete(ProcessedUpdate).where(ProcessedUpdate.created_at < utcnow() - KEEP)
    )
