"""Repository of users: look-ups and writes; the caller owns the transaction."""

from __future__ import annotations

from sqlalchemy import update
from sqlalchemy.ext.asyncio import AsyncSession

from app.db.models import MemoryMode, Role, User


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
        await self.session.execute(
            update(User).where(User.id == user_id).values(persona_id=persona_id)
        )

    async def set_memory_mode(self, user_id: int, mode: MemoryMode) -> None:
        await self.session.execute(update(User).where(User.id == user_id).values(memory_mode=mode))
