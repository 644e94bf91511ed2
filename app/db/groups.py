"""Repository of the groups the bot was added to."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from app.db.models import Group
from app.domain.enums import GroupStatus


class GroupRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def get(self, chat_id: int) -> Group | None:
        return await self.session.get(Group, chat_id)

    async def put(
        self, chat_id: int, *, title: str, status: GroupStatus, added_by: int | None
    ) -> Group:
        group = await self.get(chat_id)
        if group is None:
            group = Group(chat_id=chat_id, title=title[:255], status=status, added_by=added_by)
            self.session.add(group)
        else:
            group.title, group.status, group.added_by = title[:255], status, added_by
        await self.session.flush()
        return group

    async def newest(self, limit: int) -> list[Group]:
        """The groups the bot knows, the most recently added first."""
        result = await self.session.scalars(
            select(Group).order_by(Group.created_at.desc(), Group.chat_id).limit(limit)
        )
        return list(result)
