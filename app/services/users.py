"""Who a Telegram user is to the bot: their record, role and access, decided from the database."""

from __future__ import annotations

from dataclasses import dataclass

from aiogram.types import User as TelegramUser
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.config import AccessSettings
from app.db.models import Role, User
from app.db.users import UserRepository


@dataclass(frozen=True, slots=True)
class UserContext:
    """What the handlers know of the user behind an update."""

    id: int
    first_name: str
    language: str | None
    role: Role
    has_access: bool
    persona_id: int | None
    model: str | None
    temperature: float | None

    @property
    def is_admin(self) -> bool:
        return self.role is Role.ADMIN


class UserService:
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

    async def resolve(self, tg_user: TelegramUser) -> UserContext:
        async with self.pool() as session:
            users = UserRepository(session)
            user = await users.get(tg_user.id)
            if user is None:
                user = await users.add(self._new_user(tg_user))
                await session.commit()
            elif _profile_changed(user, tg_user):
                user.first_name = tg_user.first_name
                user.last_name = tg_user.last_name
                user.username = tg_user.username
                user.language_code = tg_user.language_code
                await session.commit()
            return _context(user, everyone_allowed=self.access.everyone_allowed)

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
        )


def _profile_changed(user: User, tg_user: TelegramUser) -> bool:
    return (user.first_name, user.last_name, user.username, user.language_code) != (
        tg_user.first_name,
        tg_user.last_name,
        tg_user.username,
        tg_user.language_code,
    )


def _context(user: User, *, everyone_allowed: bool) -> UserContext:
    return UserContext(
        id=user.id,
        first_name=user.first_name,
        language=user.language_code,
        role=user.role,
        has_access=user.has_access or user.role is Role.ADMIN or everyone_allowed,
        persona_id=user.persona_id,
        model=user.model,
        temperature=user.temperature,
    )
