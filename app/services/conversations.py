"""/chats: the user's conversations with their persona, to switch back to, rename or delete.

The current conversation is the one last started (/new) or chosen here; the others stay
stored, each with its own history, summary and documents."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession

from app.db.messages import MessageRepository
from app.domain.conversations import ConversationItem, ConversationPage

PAGE_SIZE = 6
TITLE_MAX_CHARS = 64


class ConversationService:
    async def page(
        self, session: AsyncSession, user_id: int, persona_id: int, page: int
    ) -> ConversationPage:
        """One page of the list, the current conversation first; a page past the end shows
        the last one."""
        messages = MessageRepository(session)
        total = await messages.count_conversations(user_id, persona_id)
        pages = max(1, -(-total // PAGE_SIZE))
        page = min(max(page, 0), pages - 1)
        rows = await messages.conversations(
            user_id, persona_id, offset=page * PAGE_SIZE, limit=PAGE_SIZE
        )
        items = [
            ConversationItem(
                id=row_id,
                title=title,
                first_words=first,
                active_at=active_at,
                turns=turns,
                current=page == 0 and index == 0,
            )
            for index, (row_id, title, active_at, turns, first) in enumerate(rows)
        ]
        return ConversationPage(items, page, pages, total)

    async def choose(self, session: AsyncSession, user_id: int, conversation_id: int) -> bool:
        """Make it the current conversation; False when it is not the user's (a stale or
        forged button)."""
        chosen = await MessageRepository(session).choose(user_id, conversation_id)
        await session.commit()
        return chosen

    async def rename(
        self, session: AsyncSession, user_id: int, conversation_id: int, title: str
    ) -> bool:
        renamed = await MessageRepository(session).rename(
            user_id, conversation_id, clean_title(title)
        )
        await session.commit()
        return renamed

    async def delete(self, session: AsyncSession, user_id: int, conversation_id: int) -> bool:
        """Delete it for good; when it was the current one, the one chosen before it is
        current again (or a new one starts with the next message)."""
        deleted = await MessageRepository(session).delete_conversation(user_id, conversation_id)
        await session.commit()
        return deleted


def clean_title(title: str) -> str:
    """A title on one line, within TITLE_MAX_CHARS."""
    return " ".join(title.split())[:TITLE_MAX_CHARS].strip()
