"""Who the Telegram user behind an update is to the bot: found or registered, with their role,
rights and persona decided from the database (the `UserContext` every handler gets)."""

from __future__ import annotations

from aiogram.types import User as TelegramUser
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from sqlalchemy.orm import aliased

from app.config import AccessSettings
from app.db.models import Persona, User
from app.db.users import UserRepository
from app.domain.enums import Role
from app.domain.refs import PersonaRef
from app.domain.rights import Right
from app.domain.users import UserContext


class IdentityService:
    """Finds or registers the user behind an update; seeds access from the settings."""

    def __init__(self, pool: async_sessionmaker[AsyncSession], access: AccessSettings) -> None:
        self.pool = pool
        self.access = access

    async def seed(self) -> None:
        """Admins and allowed users from the settings get their rights in the database."""
        async with self.pool() as session, session.begin():
            users = UserRepository(session)
            for user_id in sorted(self.access.admin_ids):
                await users.grant_from_settings(user_id, admin=True)
            if self.access.allowed_user_ids != "*":
                for user_id in sorted(self.access.allowed_user_ids - self.access.admin_ids):
                    await users.grant_from_settings(user_id, admin=False)

    async def resolve(self, session: AsyncSession, tg_user: TelegramUser) -> UserContext:
        """The user with their persona, in one query; registered on first contact."""
        chosen, default = aliased(Persona), aliased(Persona)
        row = (
            await session.execute(
                select(User, chosen.id, chosen.name, chosen.revision)
                .add_columns(default.id, default.name, default.revision)
                .outerjoin(chosen, chosen.id == User.persona_id)
                .outerjoin(default, default.is_default.is_(True))
                .where(User.id == tg_user.id)
                .limit(1)
            )
        ).first()
        if row is None:
            user = await UserRepository(session).add(self._new_user(tg_user))
            await session.commit()
            return _context(user, self.access.everyone_allowed, await _default(session))
        user = row[0]
        if _profile_changed(user, tg_user):
            user.first_name = tg_user.first_name
            user.last_name = tg_user.last_name
            user.username = tg_user.username
            user.language_code = tg_user.language_code
            await session.commit()
        persona = _ref(*row[1:4]) or _ref(*row[4:7])
        return _context(user, self.access.everyone_allowed, persona)

    async def chosen_language(self, user_id: int) -> str | None:
        """The language the user chose in /settings; None for their Telegram app's."""
        async with self.pool() as session:
            user = await UserRepository(session).get(user_id)
        return None if user is None else user.language

    def _new_user(self, tg_user: TelegramUser) -> User:
        admin = tg_user.id in self.access.admin_ids
        return User(
            id=tg_user.id,
            first_name=tg_user.first_name,
            last_name=tg_user.last_name,
            username=tg_user.username,
            language_code=tg_user.language_code,
            role=Role.ADMIN if admin else Role.USER,
            has_access=admin or self.access.everyone_allowed,
            can_create_personas=Right.CREATE_PERSONAS in self.access.new_user_rights,
            can_edit_personas=Right.EDIT_PERSONAS in self.access.new_user_rights,
        )


def _profile_changed(user: User, tg_user: TelegramUser) -> bool:
    return (user.first_name, user.last_name, user.username, user.language_code) != (
        tg_user.first_name,
        tg_user.last_name,
        tg_user.username,
        tg_user.language_code,
    )


def _ref(persona_id: int | None, name: str | None, revision: int | None) -> PersonaRef | None:
    return None if persona_id is None else PersonaRef(persona_id, name or "", revision or 0)


async def _default(session: AsyncSession) -> PersonaRef | None:
    row = (
        await session.execute(
            select(Persona.id, Persona.name, Persona.revision)
            .where(Persona.is_default.is_(True))
            .limit(1)
        )
    ).first()
    return None if row is None else PersonaRef(*row)


def rights_of(user: User, everyone_allowed: bool = False) -> frozenset[Right]:
    """What the user may do now: admins everything, blocked users nothing, and the other
    rights only together with chat."""
    if user.role is Role.ADMIN:
        return frozenset(Right)
    if user.blocked or not (user.has_access or everyone_allowed):
        return frozenset()
    rights = {Right.CHAT}
    if user.can_create_personas:
        rights.add(Right.CREATE_PERSONAS)
    if user.can_edit_personas:
        rights.add(Right.EDIT_PERSONAS)
    return frozenset(rights)


def tool_rights_of(user: User) -> frozenset[str]:
    """The tools' rights granted to the user (stored space-separated)."""
    return frozenset((user.tool_rights or "").split())


def _context(user: User, everyone_allowed: bool, persona: PersonaRef | None) -> UserContext:
    rights = rights_of(user, everyone_allowed)
    return UserContext(
        id=user.id,
        first_name=user.first_name,
        telegram_language=user.language_code,
        role=user.role,
        has_access=Right.CHAT in rights,
        persona_id=user.persona_id,
        model=user.model,
        temperature=user.temperature,
        persona=persona,
        memory_mode=user.memory_mode,
        rights=rights,
        blocked=user.blocked,
        language=user.language,
        answer_length=user.answer_length,
        reasoning_display=user.reasoning_display,
        voice_replies=user.voice_replies,
        recall_everywhere=user.recall_everywhere,
        budget_unit=user.budget_unit,
        budget_daily=user.budget_daily,
        budget_monthly=user.budget_monthly,
        memory_profile=user.memory_profile,
        timezone=user.timezone,
        tool_rights=tool_rights_of(user) if Right.CHAT in rights else frozenset(),
    )
