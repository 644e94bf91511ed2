"""Repository of the groups the bot was added to."""

from __future__ import annotations

from sqlalchemy import ColumnElement, delete, select
from sqlalchemy.ext.asyncio import AsyncSession

from app.db.models import Group, HeardMessage
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

    async def listens(self, chat_id: int) -> bool:
        """Whether the group keeps what it hears (an allowed group with "listen" on)."""
        listen = await self.session.scalar(
            select(Group.listen).where(
                Group.chat_id == chat_id, Group.status == GroupStatus.ALLOWED
            )
        )
        return bool(listen)

    async def hear(
        self, chat_id: int, thread_id: int | None, name: str, text: str, *, keep: int
    ) -> None:
        """Keep one message heard in the group (or topic), and only the last `keep`."""
        self.session.add(HeardMessage(chat_id=chat_id, thread_id=thread_id, name=name, text=text))
        await self.session.flush()
        newest = (
            select(HeardMessage.id)
            .where(HeardMessage.chat_id == chat_id, _in_thread(thread_id))
            .order_by(HeardMessage.id.desc())
            .limit(keep)
        )
        await self.session.execute(
            delete(HeardMessage).where(
                HeardMessage.chat_id == chat_id,
                _in_thread(thread_id),
                HeardMessage.id.not_in(newest.scalar_subquery()),
            )
        )

    async def take_heard(self, chat_id: int, thread_id: int | None) -> list[tuple[str, str]]:
        """The messages heard in the group (or topic) since its last answer, oldest first,
        as (name, text); deleted as they are taken."""
        rows = (
            await self.session.execute(
                select(HeardMessage.id, HeardMessage.name, HeardMessage.text)
                .where(HeardMessage.chat_id == chat_id, _in_thread(thread_id))
                .order_by(HeardMessage.id)
            )
        ).all()
        if rows:
            await self.session.execute(
                delete(HeardMessage).where(HeardMessage.id.in_([row[0] for row in rows]))
            )
        return [(row[1], row[2]) for row in rows]

    async def forget_heard(
        self, chat_id: int, thread_id: int | None = None, *, all_threads: bool = False
    ) -> None:
        """Delete what the group (one topic of it, or all of it) heard."""
        statement = delete(HeardMessage).where(HeardMessage.chat_id == chat_id)
        if not all_threads:
            statement = statement.where(_in_thread(thread_id))
        await self.session.execute(statement)


def _in_thread(thread_id: int | None) -> ColumnElement[bool]:
    if thread_id is None:
        return HeardMessage.thread_id.is_(None)
    return HeardMessage.thread_id == thread_id
