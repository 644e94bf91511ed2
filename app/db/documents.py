"""The parts of documents too long to send whole: stored with their conversation, found by
full-text search (SQLite FTS5 or PostgreSQL tsvector, as app/db/recall.py finds old turns)."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import Row, Select, func, literal_column, select, text, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.sql import ColumnElement

from app.db.models import Conversation, DocumentChunk
from app.db.recall import fts_words

# How many of the newest matching parts are ranked (see app/db/recall.py CANDIDATES): a
# 500-page document has about 1,000 parts, and a common word would match most of them.
CANDIDATES = 512
CANDIDATES_POSTGRES = 128

# The FTS5 table and its triggers are made by the migration (2ae530c8757c).
_SQLITE_SEARCH = text(
    """
    SELECT c.id, c.file_name, c.position, c.parts, c.content, c.token_count
    FROM (
        SELECT rowid AS id, bm25(document_chunks_fts, 1.0, 0.0) AS score
        FROM document_chunks_fts
        WHERE document_chunks_fts MATCH :match
        ORDER BY rowid DESC
        LIMIT :candidates
    ) AS hits
    JOIN document_chunks AS c ON c.id = hits.id
    ORDER BY hits.score, c.id DESC
    LIMIT :limit
    """
)

# Must be the expression of the GIN index ix_document_chunks_content_tsv.
_SIMPLE: ColumnElement[str] = literal_column("'simple'::regconfig")

PartRow = Row[int, str, int, int, str, int]


class DocumentRepository:
    """Parts of a conversation's long documents: stored once, searched for each question."""

    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def add(
        self,
        *,
        conversation_id: int,
        message_id: int,
        file_name: str,
        parts: Sequence[tuple[str, int]],
    ) -> None:
        """The document's parts (text and its token count), in order; the conversation then
        counts one more long document."""
        self.session.add_all(
            DocumentChunk(
                conversation_id=conversation_id,
                message_id=message_id,
                file_name=file_name[:255],
                position=position,
                parts=len(parts),
                content=content,
                token_count=tokens,
            )
            for position, (content, tokens) in enumerate(parts, start=1)
        )
        await self.session.execute(
            update(Conversation)
            .where(Conversation.id == conversation_id)
            .values(documents=Conversation.documents + 1)
        )
        await self.session.flush()

    async def search(
        self, conversation_id: int, terms: Sequence[str], *, limit: int
    ) -> Sequence[PartRow]:
        """The parts best matching any of the terms, best first."""
        if not terms or limit <= 0:
            return []
        if self.session.get_bind().dialect.name == "postgresql":
            query = func.websearch_to_tsquery(_SIMPLE, " or ".join(terms))
            vector = func.to_tsvector(_SIMPLE, DocumentChunk.content)
            hits = (
                select(DocumentChunk.id)
                .where(
                    DocumentChunk.conversation_id == conversation_id,
                    vector.bool_op("@@")(query),
                )
                .order_by(DocumentChunk.id.desc())
                .limit(CANDIDATES_POSTGRES)
                .cte("hits")
                .prefix_with("MATERIALIZED")
            )
            result = await self.session.execute(
                self.columns()
                .join(hits, hits.c.id == DocumentChunk.id)
                .order_by(func.ts_rank(vector, query).desc(), DocumentChunk.id.desc())
                .limit(limit)
            )
            return result.all()
        words = fts_words(terms)
        match = f'conversation_id : "{conversation_id}" AND content : ({words})'
        result = await self.session.execute(
            _SQLITE_SEARCH, {"match": match, "candidates": CANDIDATES, "limit": limit}
        )
        return result.all()

    async def beginning(self, conversation_id: int, *, limit: int) -> Sequence[PartRow]:
        """The first parts of the conversation's newest long document, in order."""
        newest = (
            select(DocumentChunk.message_id)
            .where(DocumentChunk.conversation_id == conversation_id)
            .order_by(DocumentChunk.id.desc())
            .limit(1)
            .scalar_subquery()
        )
        result = await self.session.execute(
            self.columns()
            .where(DocumentChunk.message_id == newest)
            .order_by(DocumentChunk.position)
            .limit(limit)
        )
        return result.all()

    @staticmethod
    def columns() -> Select[int, str, int, int, str, int]:
        return select(
            DocumentChunk.id,
            DocumentChunk.file_name,
            DocumentChunk.position,
            DocumentChunk.parts,
            DocumentChunk.content,
            DocumentChunk.token_count,
        )
