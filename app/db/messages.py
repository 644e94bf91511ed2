"""Repository of conversations and their turns."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import ColumnElement, Row, delete, func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from app.db.models import Conversation, DocumentChunk, Message, MessageImage
from app.domain.clock import utcnow
from app.domain.enums import MessageRole, MessageSource
from app.domain.media import Picture

# The current conversation is the one last started or chosen (ties: the newest).
_CURRENT_FIRST = (Conversation.active_at.desc().nulls_last(), Conversation.id.desc())


def _private(user_id: int, persona_id: int) -> tuple[ColumnElement[bool], ...]:
    """The user's own conversations with the persona, not those of groups they started."""
    return (
        Conversation.user_id == user_id,
        Conversation.persona_id == persona_id,
        Conversation.chat_id.is_(None),
    )


class MessageRepository:
    """Conversations of a user with a persona, and their turns newest-first."""

    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def current_with_summary(
        self, user_id: int, persona_id: int
    ) -> Row[int, str | None, int, int | None, int, str | None] | None:
        """The current conversation (the one last started or chosen) with its summary, how
        many long documents it holds and its title, in the same one-row look-up."""
        result = await self.session.execute(
            select(
                Conversation.id,
                Conversation.summary,
                Conversation.summary_tokens,
                Conversation.summary_until_id,
                Conversation.documents,
                Conversation.title,
            )
            .where(*_private(user_id, persona_id))
            .order_by(*_CURRENT_FIRST)
            .limit(1)
        )
        return result.first()

    async def conversations(
        self, user_id: int, persona_id: int, *, offset: int, limit: int
    ) -> Sequence[Row[int, str | None, datetime, int, str | None]]:
        """The user's conversations with the persona, the current one first: id, title,
        when last chosen (or started), how many turns, and its first words."""
        turns = (
            select(func.count())
            .where(Message.conversation_id == Conversation.id)
            .correlate(Conversation)
            .scalar_subquery()
        )
        first = (
            select(func.substr(Message.content, 1, 80))
            .where(Message.conversation_id == Conversation.id)
            .correlate(Conversation)
            .order_by(Message.id)
            .limit(1)
            .scalar_subquery()
        )
        result = await self.session.execute(
            select(
                Conversation.id,
                Conversation.title,
                func.coalesce(Conversation.active_at, Conversation.started_at),
                turns,
                first,
            )
            .where(*_private(user_id, persona_id))
            .order_by(*_CURRENT_FIRST)
            .offset(offset)
            .limit(limit)
        )
        return result.all()

    async def other_conversations(
        self, user_id: int, persona_id: int, current_id: int, *, limit: int
    ) -> list[int]:
        """The user's other conversations with the persona, private chat and its topics
        (not groups), the most recently active first."""
        result = await self.session.scalars(
            select(Conversation.id)
            .where(
                Conversation.user_id == user_id,
                Conversation.persona_id == persona_id,
                Conversation.id != current_id,
                (Conversation.chat_id.is_(None)) | (Conversation.chat_id == user_id),
            )
            .order_by(*_CURRENT_FIRST)
            .limit(limit)
        )
        return list(result)

    async def count_conversations(self, user_id: int, persona_id: int) -> int:
        return (
            await self.session.scalar(select(func.count()).where(*_private(user_id, persona_id)))
        ) or 0

    async def choose(self, user_id: int, conversation_id: int) -> bool:
        """Make the user's conversation the current one; False if it is not theirs."""
        result = await self.session.execute(
            update(Conversation)
            .where(Conversation.id == conversation_id, Conversation.user_id == user_id)
            .values(active_at=utcnow())
        )
        return bool(getattr(result, "rowcount", 0))

    async def rename(self, user_id: int, conversation_id: int, title: str) -> bool:
        result = await self.session.execute(
            update(Conversation)
            .where(Conversation.id == conversation_id, Conversation.user_id == user_id)
            .values(title=title)
        )
        return bool(getattr(result, "rowcount", 0))

    async def set_title_unless_set(self, conversation_id: int, title: str) -> bool:
        """The title written after the first answer, unless the user gave one meanwhile."""
        result = await self.session.execute(
            update(Conversation)
            .where(Conversation.id == conversation_id, Conversation.title.is_(None))
            .values(title=title)
        )
        return bool(getattr(result, "rowcount", 0))

    async def first_turns(
        self, conversation_id: int, limit: int
    ) -> Sequence[Row[MessageRole, str]]:
        result = await self.session.execute(
            select(Message.role, Message.content)
            .where(Message.conversation_id == conversation_id)
            .order_by(Message.id)
            .limit(limit)
        )
        return result.all()

    async def current_in_chat(
        self, chat_id: int, thread_id: int | None, persona_id: int
    ) -> Row[int, str | None, int, int | None, int, str | None] | None:
        """A group's (or a topic's) current conversation with the persona, as
        `current_with_summary` gives a user's."""
        thread = (
            Conversation.thread_id.is_(None)
            if thread_id is None
            else Conversation.thread_id == thread_id
        )
        result = await self.session.execute(
            select(
                Conversation.id,
                Conversation.summary,
                Conversation.summary_tokens,
                Conversation.summary_until_id,
                Conversation.documents,
                Conversation.title,
            )
            .where(Conversation.chat_id == chat_id, thread, Conversation.persona_id == persona_id)
            .order_by(Conversation.id.desc())
            .limit(1)
        )
        return result.first()

    async def start_conversation(
        self,
        user_id: int,
        persona_id: int,
        *,
        chat_id: int | None = None,
        thread_id: int | None = None,
    ) -> int:
        conversation = Conversation(
            user_id=user_id, persona_id=persona_id, chat_id=chat_id, thread_id=thread_id
        )
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
        source: MessageSource = MessageSource.TEXT,
        pictures: Sequence[Picture] = (),
        tool_trace: str | None = None,
    ) -> int:
        message = Message(
            conversation_id=conversation_id,
            user_id=user_id,
            persona_id=persona_id,
            role=role,
            content=content,
            token_count=token_count,
            telegram_message_id=telegram_message_id,
            source=source,
            image_count=len(pictures),
            tool_trace=tool_trace,
        )
        self.session.add(message)
        await self.session.flush()
        for position, picture in enumerate(pictures):
            self.session.add(
                MessageImage(
                    message_id=message.id,
                    position=position,
                    file_id=picture.file_id,
                    file_unique_id=picture.file_unique_id,
                    width=picture.width,
                    height=picture.height,
                    mime_type=picture.mime_type,
                    page=picture.page,
                )
            )
        if pictures:
            await self.session.flush()
        return message.id

    async def newest(
        self, conversation_id: int, *, before_id: int | None, limit: int
    ) -> Sequence[Row[int, MessageRole, str, int, int, str | None]]:
        """Up to `limit` turns (older than `before_id`), newest first, each with how many
        images it carries and its tool rounds (JSON): an index range scan."""
        query = select(
            Message.id,
            Message.role,
            Message.content,
            Message.token_count,
            Message.image_count,
            Message.tool_trace,
        ).where(Message.conversation_id == conversation_id)
        if before_id is not None:
            query = query.where(Message.id < before_id)
        result = await self.session.execute(query.order_by(Message.id.desc()).limit(limit))
        return result.all()

    async def pictures(self, message_ids: Sequence[int]) -> dict[int, list[Picture]]:
        """The images of these turns, in the order they were sent, by turn id."""
        if not message_ids:
            return {}
        result = await self.session.execute(
            select(MessageImage)
            .where(MessageImage.message_id.in_(message_ids))
            .order_by(MessageImage.message_id, MessageImage.position)
        )
        found: dict[int, list[Picture]] = {}
        for row in result.scalars():
            found.setdefault(row.message_id, []).append(
                Picture(
                    row.file_id, row.file_unique_id, row.width, row.height, row.mime_type, row.page
                )
            )
        return found

    async def oldest_after(
        self, conversation_id: int, *, after_id: int | None, before_id: int, limit: int
    ) -> Sequence[Row[int, MessageRole, str, int]]:
        """Up to `limit` turns between the two ids (exclusive), oldest first: what the
        summariser folds in next."""
        query = select(Message.id, Message.role, Message.content, Message.token_count).where(
            Message.conversation_id == conversation_id, Message.id < before_id
        )
        if after_id is not None:
            query = query.where(Message.id > after_id)
        result = await self.session.execute(query.order_by(Message.id).limit(limit))
        return result.all()

    async def save_summary(
        self,
        conversation_id: int,
        *,
        expected_until_id: int | None,
        summary: str,
        tokens: int,
        until_id: int,
    ) -> bool:
        """Store a new summary unless another writer moved it on (or the conversation was
        forgotten) since it was read; False then."""
        previous = (
            Conversation.summary_until_id.is_(None)
            if expected_until_id is None
            else Conversation.summary_until_id == expected_until_id
        )
        result = await self.session.execute(
            update(Conversation)
            .where(Conversation.id == conversation_id, previous)
            .values(summary=summary, summary_tokens=tokens, summary_until_id=until_id)
            .execution_options(synchronize_session=False)
        )
        return bool(getattr(result, "rowcount", 0))

    async def summary_of(self, conversation_id: int) -> Row[str | None, int, int | None] | None:
        result = await self.session.execute(
            select(
                Conversation.summary, Conversation.summary_tokens, Conversation.summary_until_id
            ).where(Conversation.id == conversation_id)
        )
        return result.first()

    async def place_of(
        self, user_id: int, conversation_id: int
    ) -> Row[int, int | None, int | None] | None:
        """The persona of the user's conversation and where it lives: (persona id, chat id,
        topic id); both None for a conversation of their private chat outside topics."""
        result = await self.session.execute(
            select(Conversation.persona_id, Conversation.chat_id, Conversation.thread_id).where(
                Conversation.id == conversation_id, Conversation.user_id == user_id
            )
        )
        return result.first()

    async def delete_chat_conversation(self, chat_id: int, conversation_id: int) -> bool:
        """Delete a group's conversation (its turns, parts and summary)."""
        owned = await self.session.scalar(
            select(Conversation.user_id).where(
                Conversation.id == conversation_id, Conversation.chat_id == chat_id
            )
        )
        if owned is None:
            return False
        return await self.delete_conversation(owned, conversation_id)

    async def delete_conversation(self, user_id: int, conversation_id: int) -> bool:
        """Delete a conversation of this user with all its turns and its summary."""
        owned = await self.session.scalar(
            select(Conversation.id).where(
                Conversation.id == conversation_id, Conversation.user_id == user_id
            )
        )
        if owned is None:
            return False
        # Turns and document parts explicitly, not only by cascade: the full-text indexes
        # follow their deletes.
        await self.session.execute(
            delete(DocumentChunk).where(DocumentChunk.conversation_id == owned)
        )
        await self.session.execute(delete(Message).where(Message.conversation_id == owned))
        await self.session.execute(delete(Conversation).where(Conversation.id == owned))
        return True

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
            delete(DocumentChunk).where(
                DocumentChunk.conversation_id == conversation_id,
                DocumentChunk.message_id > message_id,
            )
        )
        await self.session.execute(
            delete(Message).where(
                Message.conversation_id == conversation_id, Message.id > message_id
            )
        )
