"""Repository of conversations and their turns."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import Row, delete, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from app.db.models import Conversation, Message, MessageRole


class MessageRepository:
    """Conversations of a user with a persona, and their turns newest-first."""

    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def current_conversation(self, user_id: int, persona_id: int) -> int | None:
        return await self.session.scalar(
            select(Conversation.id)
            .where(Conversation.user_id == user_id, Conversation.persona_id == persona_id)
            .order_by(Conversation.id.desc())
            .limit(1)
        )

    async def start_conversation(self, user_id: int, persona_id: int) -> int:
        conversation = Conversation(user_id=user_id, persona_id=persona_id)
        self.session.add(conversation)
        await self.session.flush()
        return conversation.id

    async def add(
        self,
        *,
        conversation_id: int,
        user_id: int,
        persona_id: int,
        role: MessageRole,
        content: str,
        token_count: int,
        telegram_message_id: int | None = None,
    ) -> int:
        message = Message(
            conversation_id=conversation_id,
            user_id=user_id,
            persona_id=persona_id,
            role=role,
            content=content,
            token_count=token_count,
            telegram_message_id=telegram_message_id,
        )
        self.session.add(message)
        await self.session.flush()
        return message.id

    async def newest(
        self, conversation_id: int, *, before_id: int | None, limit: int
    ) -> Sequence[Row[int, MessageRole, str, int]]:
        """Up to `limit` turns (older than `before_id`), newest first: an index range scan."""
        query = select(Message.id, Message.role, Message.content, Message.token_count).where(
            Message.conversation_id == conversation_id
        )
        if before_id is not None:
            query = query.where(Message.id < before_id)
        result = await self.session.execute(query.order_by(Message.id.desc()).limit(limit))
        return result.all()

    async def count(self, conversation_id: int) -> int:
        return (
            await self.session.scalar(
                select(func.count()).where(Message.conversation_id == conversation_id)
            )
        ) or 0

    async def last_user_turn(self, conversation_id: int) -> Message | None:
        return await self.session.scalar(
            select(Message)
            .where(Message.conversation_id == conversation_id, Message.role == MessageRole.USER)
            .order_by(Message.id.desc())
            .limit(1)
        )

    async def by_telegram_id(self, user_id: int, telegram_message_id: int) -> Message | None:
        return await self.session.scalar(
            select(Message)
            .where(
                Message.user_id == user_id,
                Message.telegram_message_id == telegram_message_id,
                Message.role == MessageRole.USER,
            )
            .order_by(Message.id.desc())
            .limit(1)
        )

    async def delete_after(self, conversation_id: int, message_id: int) -> None:
        """Drop the turns after `message_id`: the answer being replaced."""
        await self.session.execute(
            delete(Message).where(
                Message.conversation_id == conversation_id, Message.id > message_id
            )
        )
