"""Embeddings of turns and of long documents' parts: stored after them, searched by
similarity for recall by meaning.

Where each database compares them:
- PostgreSQL: pgvector, where the extension is installed (CREATE EXTENSION vector), in
  the server, by cosine distance, exactly over the conversation's vectors. Without it,
  recall goes by words (one WARNING at start-up, app/memory/embeddings.py).
- SQLite: in the process, with numpy, over the conversation's vectors (kept in memory
  between messages, app/memory/embeddings.py). sqlite-vec would do it inside SQLite, but
  it is a loadable extension, and the Python builds many owners run (pyenv's, python.org's
  for macOS) have sqlite3 without extension loading; one conversation's vectors are small
  enough for numpy (10,000 turns of 1,536 dimensions: 60 MB, compared in a few ms).

No approximate (HNSW) index on PostgreSQL: one index over every conversation, filtered to
the one asked about, is what the planner picks even for a conversation that is a small
share of the table, and then it walks the graph far: measured with pgvector 0.8 and
iterative scans, 50,000 vectors of 384 dimensions, a 1,000-turn conversation took 65 ms
by the index against 1 ms exactly; a 10,000-turn one, 2 ms against 3.4. Exact search over
one conversation (found by its B-tree index) is fast enough and never misses.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

import numpy as np
from alembic.migration import MigrationContext
from alembic.operations import Operations
from sqlalchemy import Connection, Row, delete, func, select, text
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import InstrumentedAttribute
from sqlalchemy.types import UserDefinedType

from app.db.documents import DocumentRepository
from app.db.models import ChunkVector, DocumentChunk, Message, MessageVector
from app.domain.enums import MessageRole

log = logging.getLogger(__name__)

# Turns worth embedding: what users and the model said (not system notes).
_SPOKEN = (MessageRole.USER, MessageRole.ASSISTANT)

# The vector columns, and pgvector's types for them, the best first: halfvec (pgvector 0.7
# and later) keeps a dimension in two bytes, half of what vector takes, and is compared
# faster (an exact search over 10,000 turns of 384 dimensions: 3.4 ms, against 4.6 ms in
# vector and 13.4 ms in the real[] the migrations make, cast row by row). Half precision
# (three significant digits) is more than a ranking by cosine needs. A migration cannot
# make them so, since it cannot count on the extension: the first process that finds
# pgvector converts them (has_pgvector), and a later pgvector's better type likewise.
_VECTOR_TABLES = ("message_vectors", "chunk_vectors")
_PGVECTOR_TYPES = ("halfvec", "vector")

# The query's vector is sent as text, untyped: the server reads it as the column's type
# (halfvec or vector), whichever the columns are in.
# The nearest vectors first, and only then their turns: joining the turns before the
# limit would read every turn's text of the conversation (10,000 turns: 300 ms, not 15).
_PGVECTOR_SEARCH = text(
    """
    SELECT m.id, m.role, m.content, m.token_count
    FROM (
        SELECT v.message_id,
               v.vector <=> :query AS distance
        FROM message_vectors AS v
        WHERE v.model = :model
          AND (v.conversation_id = :conversation_id AND v.message_id < :before
               OR v.conversation_id = ANY(CAST(:others AS integer[])))
        ORDER BY distance, v.message_id DESC
        LIMIT :limit
    ) AS near
    JOIN messages AS m ON m.id = near.message_id
    ORDER BY near.distance, m.id DESC
    """
)

_PGVECTOR_PARTS = text(
    """
    SELECT c.id, c.file_name, c.position, c.parts, c.content, c.token_count
    FROM (
        SELECT v.chunk_id,
               v.vector <=> :query AS distance
        FROM chunk_vectors AS v
        WHERE v.conversation_id = :conversation_id AND v.model = :model
        ORDER BY distance, v.chunk_id DESC
        LIMIT :limit
    ) AS near
    JOIN document_chunks AS c ON c.id = near.chunk_id
    ORDER BY near.distance, c.id DESC
    """
)


def _literal(vector: Sequence[float]) -> str:
    """A vector as pgvector reads it from text: [0.1,0.2,...]."""
    return "[" + ",".join(f"{x:.7g}" for x in vector) + "]"


class _PgvectorType(UserDefinedType[Any]):
    """pgvector's halfvec or vector, without a set dimension (the models' differ), for
    alembic's alter_column."""

    cache_ok = True

    def __init__(self, name: str) -> None:
        self.name = name

    def get_col_spec(self, **_: Any) -> str:
        return self.name


def _convert(connection: Connection, table: str, native: str) -> None:
    Operations(MigrationContext.configure(connection)).alter_column(
        table,
        "vector",
        type_=_PgvectorType(native),
        postgresql_using=f"CAST(vector AS {native})",
    )


class VectorRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    @property
    def dialect(self) -> str:
        return self.session.get_bind().dialect.name

    async def pending(
        self, *, after_id: int, model: str, limit: int
    ) -> Sequence[Row[int, int, str]]:
        """Turns after `after_id` without a vector of `model`, oldest first: (id,
        conversation id, text)."""
        result = await self.session.execute(
            select(Message.id, Message.conversation_id, Message.content)
            .outerjoin(
                MessageVector,
                (MessageVector.message_id == Message.id) & (MessageVector.model == model),
            )
            .where(
                Message.id > after_id,
                MessageVector.message_id.is_(None),
                Message.role.in_(_SPOKEN),
            )
            .order_by(Message.id)
            .limit(limit)
        )
        return result.all()

    async def store(self, model: str, rows: Sequence[tuple[int, int, Sequence[float]]]) -> None:
        """(message id, conversation id, vector) each; a vector already there (another
        process wrote it) stays, and a turn deleted meanwhile is skipped."""
        await self._store(MessageVector, Message.id, "message_id", model, rows)

    async def _store(
        self,
        table: type[MessageVector] | type[ChunkVector],
        owner: InstrumentedAttribute[int],
        key: str,
        model: str,
        rows: Sequence[tuple[int, int, Sequence[float]]],
    ) -> None:
        if not rows:
            return
        present = set(
            await self.session.scalars(select(owner).where(owner.in_([row[0] for row in rows])))
        )
        values = [
            {key: i, "conversation_id": c, "model": model, "vector": v}
            for i, c, v in rows
            if i in present
        ]
        if values:
            insert: Any = postgresql.insert if self.dialect == "postgresql" else sqlite.insert
            await self.session.execute(insert(table).values(values).on_conflict_do_nothing())

    async def forget(self, message_id: int) -> None:
        """A turn's text changed (an edit, /retry with new words): its vectors go."""
        await self.session.execute(
            delete(MessageVector).where(MessageVector.message_id == message_id)
        )

    async def of_conversation(
        self, conversation_id: int, model: str, *, after_id: int = 0
    ) -> tuple[np.ndarray, np.ndarray]:
        """The conversation's vectors of `model` after `after_id`: their message ids and a
        matrix, one vector per row."""
        rows = (
            await self.session.execute(
                select(MessageVector.message_id, MessageVector.vector)
                .where(
                    MessageVector.conversation_id == conversation_id,
                    MessageVector.model == model,
                    MessageVector.message_id > after_id,
                )
                .order_by(MessageVector.message_id)
            )
        ).all()
        return _matrix(rows)

    async def turns(self, ids: Sequence[int]) -> Sequence[Row[int, MessageRole | str, str, int]]:
        """The turns with these ids, in the order given (those still there)."""
        if not ids:
            return []
        rows = (
            await self.session.execute(
                select(Message.id, Message.role, Message.content, Message.token_count).where(
                    Message.id.in_(list(ids))
                )
            )
        ).all()
        by_id = {row[0]: row for row in rows}
        return [by_id[i] for i in ids if i in by_id]

    async def search_pgvector(
        self,
        conversation_id: int,
        model: str,
        query: Sequence[float],
        *,
        before_id: int,
        limit: int,
        others: Sequence[int] = (),
    ) -> Sequence[Row[int, MessageRole | str, str, int]]:
        """The most similar turns older than `before_id` (and of the `others`
        conversations), nearest first (PostgreSQL with pgvector; exact, over the
        conversations' vectors, found by their index)."""
        result = await self.session.execute(
            _PGVECTOR_SEARCH,
            {
                "conversation_id": conversation_id,
                "model": model,
                "before": before_id,
                "others": [int(c) for c in others],
                "query": _literal(query),
                "limit": limit,
            },
        )
        return result.all()

    # --- the parts of long documents ----------------------------------------------------

    async def pending_parts(
        self, *, after_id: int, model: str, limit: int
    ) -> Sequence[Row[int, int, str]]:
        """Document parts after `after_id` without a vector of `model`, oldest first: (id,
        conversation id, text)."""
        result = await self.session.execute(
            select(DocumentChunk.id, DocumentChunk.conversation_id, DocumentChunk.content)
            .outerjoin(
                ChunkVector,
                (ChunkVector.chunk_id == DocumentChunk.id) & (ChunkVector.model == model),
            )
            .where(DocumentChunk.id > after_id, ChunkVector.chunk_id.is_(None))
            .order_by(DocumentChunk.id)
            .limit(limit)
        )
        return result.all()

    async def store_parts(
        self, model: str, rows: Sequence[tuple[int, int, Sequence[float]]]
    ) -> None:
        """(part id, conversation id, vector) each, as `store` for turns."""
        await self._store(ChunkVector, DocumentChunk.id, "chunk_id", model, rows)

    async def parts_of_conversation(
        self, conversation_id: int, model: str, *, after_id: int = 0
    ) -> tuple[np.ndarray, np.ndarray]:
        """The vectors of the conversation's document parts after `after_id`, as
        of_conversation gives a conversation's turns."""
        rows = (
            await self.session.execute(
                select(ChunkVector.chunk_id, ChunkVector.vector)
                .where(
                    ChunkVector.conversation_id == conversation_id,
                    ChunkVector.model == model,
                    ChunkVector.chunk_id > after_id,
                )
                .order_by(ChunkVector.chunk_id)
            )
        ).all()
        return _matrix(rows)

    async def parts(self, ids: Sequence[int]) -> Sequence[Row[int, str, int, int, str, int]]:
        """The document parts with these ids, in the order given, as the document search
        gives them (id, file name, position, parts, text, tokens)."""
        if not ids:
            return []
        rows = (
            await self.session.execute(
                DocumentRepository.columns().where(DocumentChunk.id.in_(list(ids)))
            )
        ).all()
        by_id = {row[0]: row for row in rows}
        return [by_id[i] for i in ids if i in by_id]

    async def search_parts_pgvector(
        self, conversation_id: int, model: str, query: Sequence[float], *, limit: int
    ) -> Sequence[Row[int, str, int, int, str, int]]:
        result = await self.session.execute(
            _PGVECTOR_PARTS,
            {
                "conversation_id": conversation_id,
                "model": model,
                "query": _literal(query),
                "limit": limit,
            },
        )
        return result.all()

    async def has_pgvector(self) -> bool:
        """Whether pgvector is there, installed into the database if it can be, with the
        vector columns in its type (converted here the first time)."""
        try:
            async with self.session.begin_nested():
                await self.session.execute(text("CREATE EXTENSION IF NOT EXISTS vector"))
        except Exception:  # noqa: BLE001 - not installed on the server, or not allowed
            pass
        found = await self.session.scalar(
            select(func.count()).select_from(text("pg_extension")).where(text("extname = 'vector'"))
        )
        if not found:
            return False
        await self._native_columns()
        return True

    async def _native_columns(self) -> None:
        """The vector columns in pgvector's best type this server has: a table rewrite,
        once, under a lock that makes another replica starting at the same time wait and
        then find them done."""
        known = set(
            await self.session.scalars(
                text("SELECT typname FROM pg_type WHERE typname IN ('halfvec', 'vector')")
            )
        )
        native = next(name for name in _PGVECTOR_TYPES if name in known)
        if set((await self._column_types()).values()) == {native}:
            return
        await self.session.execute(
            text(f"LOCK TABLE {', '.join(_VECTOR_TABLES)} IN ACCESS EXCLUSIVE MODE")
        )
        types = await self._column_types()
        for table in _VECTOR_TABLES:
            if types.get(table) != native:
                log.info("Converting the stored vectors of %s to pgvector's %s", table, native)
                connection = await self.session.connection()
                await connection.run_sync(_convert, table, native)

    async def _column_types(self) -> dict[str, str]:
        """The vector columns' types by table: _float4 (real[], as made), halfvec or vector."""
        rows = (
            await self.session.execute(
                text(
                    "SELECT table_name, udt_name FROM information_schema.columns "
                    "WHERE table_schema = current_schema() AND column_name = 'vector' "
                    "AND table_name = ANY(:tables)"
                ),
                {"tables": list(_VECTOR_TABLES)},
            )
        ).all()
        return {str(row[0]): str(row[1]) for row in rows}


def _matrix(rows: Sequence[Row[int, np.ndarray]]) -> tuple[np.ndarray, np.ndarray]:
    if not rows:
        return np.empty(0, dtype=np.int64), np.empty((0, 0), dtype=np.float32)
    ids = np.fromiter((row[0] for row in rows), dtype=np.int64, count=len(rows))
    return ids, np.vstack([row[1] for row in rows])
