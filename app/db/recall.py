"""Full-text search over a conversation's older turns: SQLite FTS5 or PostgreSQL tsvector."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import ColumnElement, Row, func, literal_column, select, text
from sqlalchemy.ext.asyncio import AsyncSession

from app.db.models import Message
from app.domain.enums import MessageRole

# How many of the newest matching turns are ranked. Ranking every match of a common word
# would cost time that grows with the conversation; a question about something specific
# has few matches, so the cap rarely bites.
CANDIDATES = 256
# PostgreSQL ranks by parsing each candidate's text again (the index holds no positions we
# can rank by), about 20 µs a turn: fewer candidates keep recall within a few ms.
CANDIDATES_POSTGRES = 48

# The FTS5 table and triggers are made by the migration (b57edb2f2886); SQLAlchemy has no
# construct for MATCH on a virtual table. `conversation_id` is a column of the index, so the
# match is an intersection with this conversation's turns; its bm25 weight is 0.
_SQLITE_SEARCH = text(
    """
    SELECT m.id, m.role, m.content, m.token_count
    FROM (
        SELECT rowid AS id, bm25(messages_fts, 1.0, 0.0) AS score
        FROM messages_fts
        WHERE messages_fts MATCH :match AND rowid < :before
        ORDER BY rowid DESC
        LIMIT :candidates
    ) AS hits
    JOIN messages AS m ON m.id = hits.id
    ORDER BY hits.score, m.id DESC
    LIMIT :limit
    """
)

# The same across several conversations: the current one's turns older than :before, every
# turn of the others.
_SQLITE_SEARCH_MANY = text(
    """
    SELECT m.id, m.role, m.content, m.token_count
    FROM (
        SELECT rowid AS id, bm25(messages_fts, 1.0, 0.0) AS score
        FROM messages_fts
        WHERE messages_fts MATCH :match
        ORDER BY rowid DESC
        LIMIT :candidates
    ) AS hits
    JOIN messages AS m ON m.id = hits.id
    WHERE m.conversation_id != :current OR m.id < :before
    ORDER BY hits.score, m.id DESC
    LIMIT :limit
    """
)

# Must be the expression of the GIN index ix_messages_content_tsv, constant and all.
_SIMPLE: ColumnElement[str] = literal_column("'simple'::regconfig")


def fts_words(terms: Sequence[str]) -> str:
    """The terms as an FTS5 query that matches any of them, each quoted: a word like "NEAR"
    or "AND" is then text, not syntax."""
    return " OR ".join('"' + term.replace('"', '""') + '"' for term in terms)


class RecallRepository:
    """Best-matching turns of one conversation older than a given turn, best first."""

    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def search(
        self,
        conversation_id: int,
        terms: Sequence[str],
        *,
        before_id: int,
        limit: int,
        others: Sequence[int] = (),
    ) -> Sequence[Row[int, MessageRole | str, str, int]]:
        """`others`: conversations searched whole besides this one's older turns."""
        if not terms or limit <= 0:
            return []
        if self.session.get_bind().dialect.name == "postgresql":
            return await self._search_postgres(conversation_id, terms, before_id, limit, others)
        if others:
            return await self._search_sqlite_many(conversation_id, terms, before_id, limit, others)
        return await self._search_sqlite(conversation_id, terms, before_id, limit)

    async def _search_sqlite_many(
        self,
        conversation_id: int,
        terms: Sequence[str],
        before_id: int,
        limit: int,
        others: Sequence[int],
    ) -> Sequence[Row[int, MessageRole | str, str, int]]:
        words = fts_words(terms)
        ids = " OR ".join(f'"{int(c)}"' for c in (conversation_id, *others))
        match = f"conversation_id : ({ids}) AND content : ({words})"
        result = await self.session.execute(
            _SQLITE_SEARCH_MANY,
            {
                "match": match,
                "current": conversation_id,
                "before": before_id,
                "candidates": CANDIDATES,
                "limit": limit,
            },
        )
        return result.all()

    async def _search_sqlite(
        self, conversation_id: int, terms: Sequence[str], before_id: int, limit: int
    ) -> Sequence[Row[int, MessageRole | str, str, int]]:
        words = fts_words(terms)
        match = f'conversation_id : "{conversation_id}" AND content : ({words})'
        result = await self.session.execute(
            _SQLITE_SEARCH,
            {"match": match, "before": before_id, "candidates": CANDIDATES, "limit": limit},
        )
        return result.all()

    async def _search_postgres(
        self,
        conversation_id: int,
        terms: Sequence[str],
        before_id: int,
        limit: int,
        others: Sequence[int] = (),
    ) -> Sequence[Row[int, MessageRole | str, str, int]]:
        # websearch_to_tsquery never fails on user text; "or" joins the terms.
        query = func.websearch_to_tsquery(_SIMPLE, " or ".join(terms))
        vector = func.to_tsvector(_SIMPLE, Message.content)
        # The newest matches first, found through the GIN index alone; only they are ranked,
        # since ranking parses each turn's text again (see CANDIDATES_POSTGRES).
        hits = (
            select(Message.id)
            .where(
                (Message.conversation_id == conversation_id) & (Message.id < before_id)
                | Message.conversation_id.in_(list(others))
                if others
                else (Message.conversation_id == conversation_id) & (Message.id < before_id),
                vector.bool_op("@@")(query),
            )
            .order_by(Message.id.desc())
            .limit(CANDIDATES_POSTGRES)
            .cte("hits")
            .prefix_with("MATERIALIZED")
        )
        result = await self.session.execute(
            select(Message.id, Message.role, Message.content, Message.token_count)
            .join(hits, hits.c.id == Message.id)
            .order_by(func.ts_rank(vector, query).desc(), Message.id.desc())
            .limit(limit)
        )
        return result.all()
