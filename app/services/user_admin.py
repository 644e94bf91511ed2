"""Admin operations on users: who may do what, their persona and budget. The one place that
changes rights; the `users` command line and the /users dialog both call it.

Every method takes the caller's `AsyncSession` (the caller commits) and returns plain frozen
dataclasses. A change that cannot be made raises a `UserAdminError` subclass whose message is
an English sentence for the command line; the Telegram dialog maps the types to its texts.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from datetime import UTC, date, datetime

from sqlalchemy.ext.asyncio import AsyncSession

from app.config import AccessSettings
from app.db.models import RIGHT_COLUMNS, Persona, User
from app.db.users import UserOverviewRow, UserRepository
from app.domain.clock import utcnow
from app.domain.enums import BudgetUnit, RequestStatus, Role
from app.domain.rights import Right
from app.domain.usage import Limits
from app.domain.user_admin import (
    AdminAction,
    Change,
    InvalidBudget,
    InvalidUserId,
    LastAdmin,
    ListedAdmin,
    Note,
    PersonaNotFound,
    Spent,
    UserNotFound,
    UserStatus,
    UserSummary,
)
from app.services.identity import rights_of, tool_rights_of


def utc_today() -> date:
    return datetime.now(UTC).date()


class UserAdminService:
    """Lists users and changes their access, rights, persona and budget."""

    def __init__(self, access: AccessSettings, *, today: Callable[[], date] = utc_today) -> None:
        self.access = access
        # Usage is recorded per UTC day; tests pass a fixed day.
        self._today = today

    # --- reading -----------------------------------------------------------------------------

    async def list_users(
        self, session: AsyncSession, *, offset: int = 0, limit: int | None = 50
    ) -> tuple[list[UserSummary], int]:
        """One page of users and how many there are in all. Admins first, then pending
        access requests, allowed users, users without access, blocked users; newest first
        within each. `limit=None` returns everyone from `offset` on."""
        users = UserRepository(session)
        rows = await users.overview(
            today=self._today(),
            everyone_allowed=self.access.everyone_allowed,
            offset=max(0, offset),
            limit=limit,
        )
        return [self._summary(row) for row in rows], await users.count()

    async def get(self, session: AsyncSession, user_id: int) -> UserSummary:
        """One user with their usage and budget; raises `UserNotFound`."""
        rows = await UserRepository(session).overview(
            today=self._today(), everyone_allowed=self.access.everyone_allowed, user_id=user_id
        )
        if not rows:
            raise UserNotFound(user_id)
        return self._summary(rows[0])

    # --- access ------------------------------------------------------------------------------

    async def languages(
        self, session: AsyncSession, user_id: int
    ) -> tuple[str | None, str | None] | None:
        """The user's language as chosen in /settings and as their Telegram app has it, to
        write to them in; None for a user the bot does not know."""
        user = await session.get(User, user_id)
        return None if user is None else (user.language, user.language_code)

    async def allow(self, session: AsyncSession, user_id: int, *, by: int | None = None) -> Change:
        """Let the user chat: grant chat and unblock them. A user who never wrote to the bot
        is created (the owner may allow someone in advance). Their pending access request,
        if any, is approved (`by`: the deciding admin, recorded on it)."""
        user, created = await self._get_or_create(session, user_id)
        changed = created or not user.has_access or user.blocked
        user.has_access, user.blocked = True, False
        users = UserRepository(session)
        await users.decide_pending_requests(user_id, RequestStatus.APPROVED, by=by, at=utcnow())
        await session.flush()
        return await self._change(session, user, changed, created)

    async def block(self, session: AsyncSession, user_id: int, *, by: int | None = None) -> Change:
        """Block the user: no access, and no access requests. An admin loses the role too
        (else the role would still let them in); refused for those in ADMIN_IDS and for the
        last admin. A pending request is denied."""
        user = await self._existing(session, user_id)
        notes: list[Note] = []
        if user.role is Role.ADMIN:
            await self._may_demote(session, user_id, AdminAction.BLOCK)
            user.role = Role.USER
            notes.append(Note.WAS_ADMIN)
        changed = bool(notes) or not user.blocked or user.has_access
        user.blocked, user.has_access = True, False
        users = UserRepository(session)
        await users.decide_pending_requests(user_id, RequestStatus.DENIED, by=by, at=utcnow())
        await session.flush()
        return Change(await self.get(session, user_id), changed, tuple(notes))

    # --- rights ------------------------------------------------------------------------------

    async def grant(self, session: AsyncSession, user_id: int, right: Right) -> Change:
        """Grant a right; a user who never wrote to the bot is created.

        `chat` is the same as `allow`. `admin` gives the role (and unblocks). The persona
        rights are stored even without chat, with `Note.NEEDS_CHAT` in the result."""
        if right is Right.CHAT:
            return await self.allow(session, user_id)
        user, created = await self._get_or_create(session, user_id)
        if right is Right.ADMIN:
            changed = user.role is not Role.ADMIN or user.blocked
            user.role, user.blocked, user.has_access = Role.ADMIN, False, True
        else:
            changed = not getattr(user, RIGHT_COLUMNS[right])
            setattr(user, RIGHT_COLUMNS[right], True)
        await session.flush()
        return await self._change(session, user, changed or created, created, granted=right)

    async def revoke(self, session: AsyncSession, user_id: int, right: Right) -> Change:
        """Take a right away. Without `chat` the user has no access (but is not blocked);
        revoking `admin` is refused for those in ADMIN_IDS and for the last admin."""
        user = await self._existing(session, user_id)
        if right is Right.ADMIN:
            changed = user.role is Role.ADMIN
            if changed:
                await self._may_demote(session, user_id, AdminAction.REVOKE_ADMIN)
            user.role = Role.USER
        else:  # chat and the persona rights are columns; without chat: no access
            changed = bool(getattr(user, RIGHT_COLUMNS[right]))
            setattr(user, RIGHT_COLUMNS[right], False)
        await session.flush()
        return await self._change(session, user, changed, False, revoked=right)

    async def set_tool_right(
        self, session: AsyncSession, user_id: int, right: str, granted: bool
    ) -> Change:
        """Grant or take away a tool's right (a plugin's, an MCP server's: `right` as
        `parse_tool_right` gives it); a user who never wrote to the bot is created by a
        grant. Like the persona rights, it counts only with chat."""
        if granted:
            user, created = await self._get_or_create(session, user_id)
        else:
            user, created = await self._existing(session, user_id), False
        held = tool_rights_of(user)
        changed = (right in held) != granted
        held = held | {right} if granted else held - {right}
        user.tool_rights = " ".join(sorted(held)) or None
        await session.flush()
        summary = await self.get(session, user.id)
        notes: list[Note] = [Note.CREATED] if created else []
        if granted and Right.CHAT not in summary.rights:
            notes.append(Note.NEEDS_CHAT)
        if not granted and summary.status is UserStatus.ADMIN:
            notes.append(Note.ADMIN_HAS_ALL)
        return Change(summary, changed or created, tuple(notes))

    # --- persona and budget ------------------------------------------------------------------

    async def set_persona(
        self, session: AsyncSession, user_id: int, persona_id: int | None
    ) -> Change:
        """Choose the persona the user talks to; None: the default one."""
        user = await self._existing(session, user_id)
        if persona_id is not None and await session.get(Persona, persona_id) is None:
            raise PersonaNotFound(persona_id)
        changed = user.persona_id != persona_id
        user.persona_id = persona_id
        await session.flush()
        return await self._change(session, user, changed, False)

    async def set_budget(
        self,
        session: AsyncSession,
        user_id: int,
        unit: BudgetUnit | None,
        daily: float | None = None,
        monthly: float | None = None,
    ) -> Change:
        """Give the user their own limits in `unit` (a None limit: none for that period), or
        with `unit=None` put them back on the owner's defaults. Limits must be positive."""
        user = await self._existing(session, user_id)
        if unit is None and (daily is not None or monthly is not None):
            raise InvalidBudget("Limits need a unit, tokens or money.")
        for limit in (daily, monthly):
            if limit is not None and not (math.isfinite(limit) and limit > 0):
                raise InvalidBudget(f"A limit must be a positive number, not {limit}.")
        new = (unit, daily, monthly)
        changed = (user.budget_unit, user.budget_daily, user.budget_monthly) != new
        user.budget_unit, user.budget_daily, user.budget_monthly = new
        await session.flush()
        return await self._change(session, user, changed, False)

    # --- internals ---------------------------------------------------------------------------

    async def _existing(self, session: AsyncSession, user_id: int) -> User:
        user = await UserRepository(session).get(user_id)
        if user is None:
            raise UserNotFound(user_id)
        return user

    async def _get_or_create(self, session: AsyncSession, user_id: int) -> tuple[User, bool]:
        users = UserRepository(session)
        user = await users.get(user_id)
        if user is not None:
            return user, False
        if user_id <= 0:
            raise InvalidUserId(user_id)
        rights = self.access.new_user_rights
        user = await users.add(
            User(
                id=user_id,
                first_name="",
                role=Role.ADMIN if user_id in self.access.admin_ids else Role.USER,
                has_access=False,
                can_create_personas=Right.CREATE_PERSONAS in rights,
                can_edit_personas=Right.EDIT_PERSONAS in rights,
            )
        )
        return user, True

    async def _may_demote(self, session: AsyncSession, user_id: int, action: AdminAction) -> None:
        if user_id in self.access.admin_ids:
            raise ListedAdmin(user_id, action)
        # Admins in ADMIN_IDS count even before the bot has seeded them into the database.
        others = set(await UserRepository(session).other_admin_ids(user_id))
        if not others | (self.access.admin_ids - {user_id}):
            raise LastAdmin(user_id, action)

    async def _change(
        self,
        session: AsyncSession,
        user: User,
        changed: bool,
        created: bool,
        *,
        granted: Right | None = None,
        revoked: Right | None = None,
    ) -> Change:
        summary = await self.get(session, user.id)
        notes: list[Note] = [Note.CREATED] if created else []
        if granted is not None and granted not in summary.rights:
            notes.append(Note.NEEDS_CHAT)  # only persona rights get here: chat is `allow`
        if revoked is not None and revoked is not Right.ADMIN:
            if summary.status is UserStatus.ADMIN:
                notes.append(Note.ADMIN_HAS_ALL)
            elif revoked is Right.CHAT and Right.CHAT in summary.rights:
                notes.append(Note.EVERYONE_ALLOWED)
        if revoked is Right.CHAT and self._listed_allowed(user.id):
            notes.append(Note.LISTED_ALLOWED)
        return Change(summary, changed, tuple(notes))

    def _listed_allowed(self, user_id: int) -> bool:
        allowed = self.access.allowed_user_ids
        return allowed != "*" and user_id in allowed and user_id not in self.access.admin_ids

    def _summary(self, row: UserOverviewRow) -> UserSummary:
        user = row.user
        rights = rights_of(user, self.access.everyone_allowed)
        return UserSummary(
            id=user.id,
            first_name=user.first_name,
            username=user.username,
            status=_status(user, rights, row.pending_request),
            rights=rights,
            granted=_granted(user),
            tool_rights=tool_rights_of(user),
            persona_id=user.persona_id,
            persona_name=row.persona_name,
            today=Spent(row.today_tokens, row.today_cost),
            month=Spent(row.month_tokens, row.month_cost),
            budget=(
                None
                if user.budget_unit is None
                else Limits(user.budget_unit, user.budget_daily, user.budget_monthly)
            ),
            listed_admin=user.id in self.access.admin_ids,
            created_at=user.created_at,
        )


def _status(user: User, rights: frozenset[Right], pending: bool) -> UserStatus:
    # The same precedence as the list's order (UserRepository.overview).
    if user.role is Role.ADMIN:
        return UserStatus.ADMIN
    if user.blocked:
        return UserStatus.BLOCKED
    if Right.CHAT in rights:
        return UserStatus.ALLOWED
    return UserStatus.PENDING if pending else UserStatus.NO_ACCESS


def _granted(user: User) -> frozenset[Right]:
    granted = {right for right, column in RIGHT_COLUMNS.items() if getattr(user, column)}
    if user.role is Role.ADMIN:
        granted.add(Right.ADMIN)
    return frozenset(granted)
