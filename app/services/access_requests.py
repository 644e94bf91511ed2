"""Access requests: a stranger asks, every admin is told, the first admin to decide decides."""

from __future__ import annotations

import enum
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from app.db.models import AccessRequest, User
from app.domain.access import Requester
from app.domain.clock import utcnow
from app.domain.enums import RequestStatus, Role


class Asked(enum.StrEnum):
    """What became of a user's request for access."""

    CREATED = "created"
    PENDING = "pending"  # one is already waiting: nothing new is sent to the admins
    TOO_SOON = "too_soon"  # denied lately: the user waits out the cooldown
    HAS_ACCESS = "has_access"
    BLOCKED = "blocked"
    NO_ADMINS = "no_admins"  # nobody could decide: no admin is known to the bot


@dataclass(frozen=True, slots=True)
class AskResult:
    outcome: Asked
    request_id: int | None = None
    since: datetime | None = None  # when the pending request was made (UTC, aware)
    retry_at: datetime | None = None  # TOO_SOON: when the user may ask again
    admins: tuple[Admin, ...] = ()  # CREATED: whom to tell


@dataclass(frozen=True, slots=True)
class Admin:
    """An admin to notify, with the language to notify them in."""

    id: int
    language: str | None
    telegram_language: str | None


class Decided(enum.StrEnum):
    """What became of an admin's decision."""

    DONE = "done"
    ALREADY = "already"  # another admin decided first
    GONE = "gone"  # no such request (deleted user, forged button)


@dataclass(frozen=True, slots=True)
class DecisionResult:
    outcome: Decided
    status: RequestStatus | None = None
    requester: Requester | None = None
    requester_language: str | None = None
    decided_by: str | None = None  # the deciding admin's name
    notices: tuple[tuple[int, int], ...] = ()  # admins' messages about it: (chat, message)
    retry_at: datetime | None = None  # DENIED: when the user may ask again


class AccessRequestService:
    """Creates and decides access requests; the handlers only talk to Telegram."""

    def __init__(self, cooldown: timedelta) -> None:
        self.cooldown = cooldown

    async def ask(self, session: AsyncSession, user_id: int) -> AskResult:
        user = await session.get(User, user_id)
        if user is None:
            raise LookupError(user_id)  # the access middleware registers every user first
        if user.blocked:
            return AskResult(Asked.BLOCKED)
        if user.has_access or user.role is Role.ADMIN:
            return AskResult(Asked.HAS_ACCESS)
        pending = await self._latest(session, user_id, RequestStatus.PENDING)
        if pending is not None:
            return AskResult(Asked.PENDING, pending.id, since=_aware(pending.created_at))
        denied = await self._latest(session, user_id, RequestStatus.DENIED)
        if denied is not None and denied.decided_at is not None:
            retry_at = _aware(denied.decided_at) + self.cooldown
            if retry_at > utcnow():
                return AskResult(Asked.TOO_SOON, denied.id, retry_at=retry_at)
        admins = await self.admins(session)
        if not admins:
            return AskResult(Asked.NO_ADMINS)
        request = AccessRequest(user_id=user_id, status=RequestStatus.PENDING, notices=[])
        session.add(request)
        await session.flush()
        return AskResult(Asked.CREATED, request.id, since=_aware(request.created_at), admins=admins)

    async def pending_since(self, session: AsyncSession, user_id: int) -> datetime | None:
        pending = await self._latest(session, user_id, RequestStatus.PENDING)
        return None if pending is None else _aware(pending.created_at)

    async def remember_notices(
        self, session: AsyncSession, request_id: int, notices: list[tuple[int, int]]
    ) -> None:
        await session.execute(
            update(AccessRequest)
            .where(AccessRequest.id == request_id)
            .values(notices=[list(notice) for notice in notices])
        )

    async def decide(
        self, session: AsyncSession, request_id: int, admin_id: int, approve: bool
    ) -> DecisionResult:
        request = await session.get(AccessRequest, request_id)
        if request is None:
            return DecisionResult(Decided.GONE)
        requester = await session.get(User, request.user_id)
        if requester is None:
            return DecisionResult(Decided.GONE)
        notices = tuple((chat, message) for chat, message in request.notices)
        if request.status is not RequestStatus.PENDING:
            decider = await session.get(User, request.decided_by) if request.decided_by else None
            return DecisionResult(
                Decided.ALREADY,
                request.status,
                _requester(requester),
                decided_by=decider.first_name if decider else None,
                notices=notices,
            )
        # Only one admin's decision may win: the status moves from pending exactly once.
        now = utcnow()
        status = RequestStatus.APPROVED if approve else RequestStatus.DENIED
        moved = await session.execute(
            update(AccessRequest)
            .where(AccessRequest.id == request_id, AccessRequest.status == RequestStatus.PENDING)
            .values(status=status, decided_by=admin_id, decided_at=now)
        )
        if getattr(moved, "rowcount", 1) == 0:
            await session.refresh(request)
            return DecisionResult(Decided.ALREADY, request.status, _requester(requester))
        if approve:
            requester.has_access = True
            requester.blocked = False
        admin = await session.get(User, admin_id)
        await session.flush()
        return DecisionResult(
            Decided.DONE,
            status,
            _requester(requester),
            requester_language=requester.language,
            decided_by=admin.first_name if admin else None,
            notices=notices,
            retry_at=None if approve else now + self.cooldown,
        )

    async def admins(self, session: AsyncSession) -> tuple[Admin, ...]:
        rows = await session.execute(
            select(User.id, User.language, User.language_code)
            .where(User.role == Role.ADMIN)
            .order_by(User.id)
        )
        return tuple(Admin(*row) for row in rows)

    async def _latest(
        self, session: AsyncSession, user_id: int, status: RequestStatus
    ) -> AccessRequest | None:
        query = (
            select(AccessRequest)
            .where(AccessRequest.user_id == user_id, AccessRequest.status == status)
            .order_by(AccessRequest.id.desc())
            .limit(1)
        )
        return (await session.execute(query)).scalar_one_or_none()


def _requester(user: User) -> Requester:
    return Requester(user.id, user.first_name, user.last_name, user.username, user.language_code)


def _aware(moment: datetime) -> datetime:
    # SQLite hands back naive datetimes; they were written in UTC.
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=utcnow().tzinfo)
