"""Groups the bot is added to: allowed at once when a bot admin adds it, otherwise waiting
for an admin's Approve or Deny; silent wherever it is not allowed, and for good once it is
removed (until it is added again)."""

from __future__ import annotations

from dataclasses import dataclass

from aiogram import Bot
from sqlalchemy.ext.asyncio import AsyncSession

from app.config import AccessSettings
from app.db.groups import GroupRepository
from app.db.messages import MessageRepository
from app.delivery.ephemeral import tell_one
from app.domain.enums import GroupMembers, GroupStatus
from app.domain.rights import Right
from app.domain.users import UserContext


@dataclass(frozen=True, slots=True)
class GroupView:
    chat_id: int
    title: str
    status: GroupStatus
    members: GroupMembers
    persona_id: int | None
    added_by: int | None


class GroupService:
    def __init__(self, access: AccessSettings) -> None:
        self.access = access

    async def get(self, session: AsyncSession, chat_id: int) -> GroupView | None:
        group = await GroupRepository(session).get(chat_id)
        if group is None:
            return None
        return GroupView(
            group.chat_id,
            group.title,
            group.status,
            group.members or self.access.group_members,
            group.persona_id,
            group.added_by,
        )

    async def joined(
        self, session: AsyncSession, chat_id: int, title: str, by: UserContext | None
    ) -> GroupStatus:
        """The bot was added to a group by `by`: allowed when a bot admin did it; a group an
        admin blocked stays blocked; otherwise it waits for an admin."""
        groups = GroupRepository(session)
        known = await groups.get(chat_id)
        if by is not None and Right.ADMIN in by.rights:
            status = GroupStatus.ALLOWED
        elif known is not None and known.status is GroupStatus.BLOCKED:
            status = GroupStatus.BLOCKED
        else:
            status = GroupStatus.PENDING
        await groups.put(
            chat_id, title=title, status=status, added_by=by.id if by is not None else None
        )
        await session.commit()
        return status

    async def left(self, session: AsyncSession, chat_id: int) -> None:
        """The bot was removed (or the group deleted): nothing more happens there."""
        group = await GroupRepository(session).get(chat_id)
        if group is not None and group.status is not GroupStatus.BLOCKED:
            group.status = GroupStatus.LEFT
            await session.commit()

    @staticmethod
    async def tell(
        bot: Bot, chat_id: int, user_id: int, text: str, *, reply_to: int, thread_id: int | None
    ) -> None:
        """A note for one member only (a refusal, their budget): app/delivery/ephemeral.py."""
        await tell_one(bot, chat_id, user_id, text, reply_to=reply_to, thread_id=thread_id)

    async def forget(
        self, session: AsyncSession, chat_id: int, thread_id: int | None, persona_id: int
    ) -> bool:
        """Delete the group's (or topic's) conversation for good; the next question starts a
        new one. False when there was none."""
        messages = MessageRepository(session)
        row = await messages.current_in_chat(chat_id, thread_id, persona_id)
        if row is None:
            return False
        deleted = await messages.delete_chat_conversation(chat_id, row[0])
        await session.commit()
        return deleted

    async def decide(
        self, session: AsyncSession, chat_id: int, *, approve: bool
    ) -> GroupView | None:
        """An admin's Approve or Deny; None when the group is gone or no longer waits (the
        other admin decided, or the bot left)."""
        group = await GroupRepository(session).get(chat_id)
        if group is None or group.status is not GroupStatus.PENDING:
            return None
        group.status = GroupStatus.ALLOWED if approve else GroupStatus.BLOCKED
        await session.commit()
        return await self.get(session, chat_id)
