"""Answers being written (`PendingAnswer`): what the recovery of interrupted answers reads."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import delete, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from app.db.models import PendingAnswer, User
from app.domain.clock import utcnow


@dataclass(frozen=True, slots=True)
class Interrupted:
    """An answer its process stopped writing, with what telling its user needs."""

    id: int
    conversation_id: int
    owner: str
    user_id: int
    chat_id: int
    reply_to: int | None
    language: str | None  # chosen in /settings
    telegram_language: str | None


def add(
    session: AsyncSession,
    *,
    conversation_id: int,
    user_id: int,
    chat_id: int,
    reply_to: int | None,
    owner: str,
) -> None:
    """In the session's transaction, written by its next commit (with the user's turn)."""
    session.add(
        PendingAnswer(
            conversation_id=conversation_id,
            user_id=user_id,
            chat_id=chat_id,
            reply_to=reply_to,
            owner=owner,
            heartbeat_at=utcnow(),
        )
    )


async def remove(session: AsyncSession, *, conversation_id: int, owner: str) -> None:
    """The answer of the conversation this process was writing is settled. (One user's
    messages are answered one at a time, so a conversation has one answer in progress.)"""
    await session.execute(
        delete(PendingAnswer).where(
            PendingAnswer.conversation_id == conversation_id, PendingAnswer.owner == owner
        )
    )


async def beat(session: AsyncSession, owner: str, conversation_ids: Sequence[int]) -> None:
    """This process is alive and still writes these answers: they are not interrupted."""
    await session.execute(
        update(PendingAnswer)
        .where(PendingAnswer.owner == owner, PendingAnswer.conversation_id.in_(conversation_ids))
        .values(heartbeat_at=utcnow())
    )


async def stale(session: AsyncSession, *, before: datetime, limit: int = 50) -> list[Interrupted]:
    """Answers not heard of since `before`, oldest first."""
    rows = await session.execute(
        select(
            PendingAnswer.id,
            PendingAnswer.conversation_id,
            PendingAnswer.owner,
            PendingAnswer.user_id,
            PendingAnswer.chat_id,
            PendingAnswer.reply_to,
            User.language,
            User.language_code,
        )
        .join(User, User.id == PendingAnswer.user_id)
        .where(PendingAnswer.heartbeat_at < before)
        .order_by(PendingAnswer.id)
        .limit(limit)
    )
    return [Interrupted(*row) for row in rows]


async def take(
    session: AsyncSession, pending_id: int, *, owner: str, stale_before: datetime
) -> bool:
    """Make a stale answer this process's (so that no other process tells its user too);
    False when another process took it first or its writer came back to life."""
    result = await session.execute(
        update(PendingAnswer)
        .where(PendingAnswer.id == pending_id, PendingAnswer.heartbeat_at < stale_before)
        .values(owner=owner, heartbeat_at=utcnow())
    )
    return bool(getattr(result, "rowcount", 0))


async def forget(session: AsyncSession, pending_id: int) -> None:
    await session.execute(delete(PendingAnswer).where(PendingAnswer.id == pending_id))
