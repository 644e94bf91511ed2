"""Repository of user profiles: the facts about each user, and how far the writer has read;
the caller owns the transaction."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import ColumnElement, Row, delete, func, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from app.db.models import Conversation, DocumentChunk, Message, ProfileFact, User
from app.domain.enums import MessageRole


def _own_private() -> ColumnElement[bool]:
    """A conversation of a private chat: the plain one (no chat) or one of its topics
    (private chats have positive ids, groups negative ones)."""
    return or_(Conversation.chat_id.is_(None), Conversation.chat_id > 0)


class ProfileRepository:
    """A user's profile facts, oldest first, and the user turns it is written from."""

    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def facts(self, user_id: int) -> Sequence[Row[int, str, int]]:
        """(id, text, tokens) of each fact, oldest first."""
        result = await self.session.execute(
            select(ProfileFact.id, ProfileFact.text, ProfileFact.token_count)
            .where(ProfileFact.user_id == user_id)
            .order_by(ProfileFact.id)
        )
        return result.all()

    async def add(self, user_id: int, text: str, tokens: int) -> int:
        fact = ProfileFact(user_id=user_id, text=text, token_count=tokens)
        self.session.add(fact)
        await self.session.flush()
        return fact.id

    async def remove(self, user_id: int, fact_ids: Sequence[int]) -> int:
        """Delete these facts of this user (another user's ids delete nothing)."""
        if not fact_ids:
            return 0
        result = await self.session.execute(
            delete(ProfileFact).where(
                ProfileFact.user_id == user_id, ProfileFact.id.in_(list(fact_ids))
            )
        )
        return int(getattr(result, "rowcount", 0) or 0)

    async def clear(self, user_id: int) -> int:
        """Delete the whole profile; the writer starts afresh from the newest turn."""
        result = await self.session.execute(
            delete(ProfileFact).where(ProfileFact.user_id == user_id)
        )
        await self.skip_to_newest(user_id)
        return int(getattr(result, "rowcount", 0) or 0)

    async def skip_to_newest(self, user_id: int) -> None:
        """The writer reads only messages sent from now on."""
        newest = await self.session.scalar(
            select(func.max(Message.id)).where(Message.user_id == user_id)
        )
        await self.session.execute(
            update(User).where(User.id == user_id).values(profile_until_id=newest)
        )

    async def setting(self, user_id: int) -> tuple[bool | None, int | None] | None:
        """The user's on/off choice (None: the owner's default) and how far the writer has
        read; None for an unknown user."""
        row = (
            await self.session.execute(
                select(User.memory_profile, User.profile_until_id).where(User.id == user_id)
            )
        ).first()
        return None if row is None else (row[0], row[1])

    async def set_enabled(self, user_id: int, enabled: bool) -> None:
        await self.session.execute(
            update(User).where(User.id == user_id).values(memory_profile=enabled)
        )

    async def read_until(self, user_id: int, message_id: int) -> None:
        await self.session.execute(
            update(User).where(User.id == user_id).values(profile_until_id=message_id)
        )

    async def user_turns_after(
        self, user_id: int, after_id: int | None, limit: int
    ) -> Sequence[Row[int, str, int]]:
        """(id, text, tokens) of the user's own messages in their private chat after
        `after_id`, oldest first: never a group's."""
        query = (
            select(Message.id, Message.content, Message.token_count)
            .join(Conversation, Conversation.id == Message.conversation_id)
            .where(
                Message.user_id == user_id,
                Message.role == MessageRole.USER,
                Conversation.user_id == user_id,
                _own_private(),
            )
            .order_by(Message.id)
            .limit(limit)
        )
        if after_id is not None:
            query = query.where(Message.id > after_id)
        return (await self.session.execute(query)).all()

    async def private_conversations(self, user_id: int) -> Sequence[int]:
        """Ids of the user's own private conversations, with every persona."""
        result = await self.session.scalars(
            select(Conversation.id).where(Conversation.user_id == user_id, _own_private())
        )
        return result.all()

    async def delete_conversations(self, conversation_ids: Sequence[int]) -> None:
        """Delete these conversations with their turns (explicitly: the full-text indexes
        follow the deletes) and document parts."""
        ids = list(conversation_ids)
        if not ids:
            return
        await self.session.execute(
            delete(DocumentChunk).where(DocumentChunk.conversation_id.in_(ids))
        )
        await self.session.execute(delete(Message).where(Message.conversation_id.in_(ids)))
        await self.session.execute(delete(Conversation).where(Conversation.id.in_(ids)))
