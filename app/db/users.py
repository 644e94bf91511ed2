"""Repository of users: look-ups and writes; the caller owns the transaction."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from sqlalchemy import (
    BigInteger,
    ColumnElement,
    Float,
    case,
    cast,
    exists,
    false,
    func,
    or_,
    select,
    true,
    update,
)
from sqlalchemy.ext.asyncio import AsyncSession

from app.db.models import AccessRequest, Persona, Usage, User
from app.domain.enums import MemoryMode, RequestStatus, Role


@dataclass(frozen=True, slots=True)
class UserOverviewRow:
    """A user with what an admin sees next to them: persona name, request, usage sums."""

    user: User
    persona_name: str | None
    pending_request: bool
    today_tokens: int
    today_cost: float
    month_tokens: int
    month_cost: float


# The order admins look at users in; see `UserRepository.overview`.
RANK_ADMIN, RANK_PENDING, RANK_ALLOWED, RANK_NO_ACCESS, RANK_BLOCKED = range(5)


class UserRepository:
    """Users by Telegram id."""

    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def get(self, user_id: int) -> User | None:
        return await self.session.get(User, user_id)

    async def add(self, user: User) -> User:
        self.session.add(user)
        await self.session.flush()
        return user

    async def grant_from_settings(self, user_id: int, *, admin: bool) -> None:
        """Make sure a user named in the settings exists with access (and admin role)."""
        user = await self.get(user_id)
        if user is None:
            user = await self.add(User(id=user_id, first_name=""))
        user.has_access = True
        if admin:
            user.role = Role.ADMIN
        await self.session.flush()

    async def set_persona(self, user_id: int, persona_id: int | None) -> None:
        await self.set_choices(user_id, persona_id=persona_id)

    async def set_memory_mode(self, user_id: int, mode: MemoryMode) -> None:
        await self.set_choices(user_id, memory_mode=mode)

    async def set_choices(self, user_id: int, **values: Any) -> None:
        """Store what the user chose (columns of `users`; None: back to the default)."""
        await self.session.execute(update(User).where(User.id == user_id).values(**values))

    # --- administration ----------------------------------------------------------------------

    async def count(self) -> int:
        return await self.session.scalar(select(func.count()).select_from(User)) or 0

    async def overview(
        self,
        *,
        today: date,
        everyone_allowed: bool,
        offset: int = 0,
        limit: int | None = None,
        user_id: int | None = None,
    ) -> list[UserOverviewRow]:
        """One page of users in one query: admins, pending requests, allowed, no access,
        blocked; newest first within each. Usage is summed over models for `today` and for
        its month (usage days are UTC days)."""
        pending = (
            exists()
            .where(AccessRequest.user_id == User.id, AccessRequest.status == RequestStatus.PENDING)
            .correlate(User)
        )
        tokens = Usage.prompt_tokens + Usage.completion_tokens
        is_today = Usage.day == today
        usage = (
            select(
                Usage.user_id,
                func.sum(case((is_today, tokens), else_=0)).label("today_tokens"),
                func.sum(case((is_today, Usage.cost), else_=0.0)).label("today_cost"),
                func.sum(tokens).label("month_tokens"),
                func.sum(Usage.cost).label("month_cost"),
            )
            .where(Usage.day >= today.replace(day=1), Usage.day <= today)
            .group_by(Usage.user_id)
            .subquery()
        )
        query = (
            select(
                User,
                Persona.name,
                pending.label("pending"),
                # PostgreSQL sums BIGINT as NUMERIC; cast back so both databases return ints.
                cast(func.coalesce(usage.c.today_tokens, 0), BigInteger),
                cast(func.coalesce(usage.c.today_cost, 0.0), Float),
                cast(func.coalesce(usage.c.month_tokens, 0), BigInteger),
                cast(func.coalesce(usage.c.month_cost, 0.0), Float),
            )
            .outerjoin(Persona, Persona.id == User.persona_id)
            .outerjoin(usage, usage.c.user_id == User.id)
            .order_by(_rank(pending, everyone_allowed), User.created_at.desc(), User.id.desc())
            .offset(offset)
            .limit(limit)
        )
        if user_id is not None:
            query = query.where(User.id == user_id)
        rows = await self.session.execute(query)
        return [
            UserOverviewRow(user, name, bool(flag), int(tt), float(tc), int(mt), float(mc))
            for user, name, flag, tt, tc, mt, mc in rows
        ]

    async def other_admin_ids(self, user_id: int) -> Sequence[int]:
        """Admins who are not blocked, but this user."""
        result = await self.session.scalars(
            select(User.id).where(
                User.role == Role.ADMIN, User.blocked.is_(False), User.id != user_id
            )
        )
        return result.all()

    async def decide_pending_requests(
        self, user_id: int, status: RequestStatus, *, by: int | None, at: datetime
    ) -> None:
        """Close the user's pending access request (if any) as approved or denied."""
        await self.session.execute(
            update(AccessRequest)
            .where(AccessRequest.user_id == user_id, AccessRequest.status == RequestStatus.PENDING)
            .values(status=status, decided_by=by, decided_at=at)
        )


def _rank(pending: ColumnElement[bool], everyone_allowed: bool) -> ColumnElement[int]:
    # The same precedence as the status an admin sees (app/services/user_admin.py).
    allowed = or_(User.has_access.is_(True), true() if everyone_allowed else false())
    return case(
        (User.role == Role.ADMIN, RANK_ADMIN),
        (User.blocked.is_(True), RANK_BLOCKED),
        (allowed, RANK_ALLOWED),
        (pending, RANK_PENDING),
        else_=RANK_NO_ACCESS,
    )
