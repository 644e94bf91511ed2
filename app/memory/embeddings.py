"""Recall by meaning: turns embedded in the background after they are stored, and the turns
nearest to a new message found when older turns no longer fit.

Only the new message's embedding is ever on the path to the model, and only when recall
runs; it is bounded by EMBEDDINGS_TIMEOUT, and any failure makes recall go by words for
that message. Everything else happens in one background task per process, which embeds
what is not embedded yet in batches (what another replica or an earlier run left too), and
never delays an answer.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from sqlalchemy import Row
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.db.vectors import VectorRepository
from app.domain.enums import MessageRole
from app.llm.embeddings import Embedder, EmbeddingFailed

log = logging.getLogger(__name__)

# The vectors of the conversations searched lately, kept in memory on SQLite (they are
# compared in the process): at most this many bytes in all.
CACHE_BYTES = 256 * 1024 * 1024
# Vectors of texts embedded on the answer path, for the background worker to store
# without asking the server again.
QUERY_CACHE = 512
# After a failure the worker waits this long, doubling up to the longest.
BACKOFF_FIRST, BACKOFF_LONGEST = 5.0, 300.0
# The worker looks for work this often even when nobody pokes it (another replica's turns).
IDLE_SECONDS = 30.0

TurnRow = Row[int, MessageRole | str, str, int]


@dataclass(slots=True)
class _Matrix:
    ids: np.ndarray
    vectors: np.ndarray

    @property
    def size(self) -> int:
        return int(self.vectors.nbytes + self.ids.nbytes)

    @property
    def last_id(self) -> int:
        return int(self.ids[-1]) if len(self.ids) else 0


class Embeddings:
    """One embedding model's index of the turns, and the worker that keeps it current."""

    def __init__(
        self,
        pool: async_sessionmaker[AsyncSession],
        embedder: Embedder,
        *,
        batch: int = 64,
        dialect: str = "sqlite",
    ) -> None:
        self.pool = pool
        self.embedder = embedder
        self.batch = batch
        self.dialect = dialect
        # False on PostgreSQL without pgvector (found at start): recall by words.
        self.usable = True
        # By (kind, conversation id): "turns" or "parts".
        self._matrices: OrderedDict[tuple[str, int], _Matrix] = OrderedDict()
        self._queries: OrderedDict[str, list[float]] = OrderedDict()
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._mark = 0  # every turn up to this id is embedded
        self._parts_mark = 0  # every document part up to this id is embedded
        self.failing_since: float | None = None

    @property
    def model(self) -> str:
        """What the vectors are stored and searched under (the model and its size)."""
        return self.embedder.key

    # --- the background worker -----------------------------------------------------------

    async def start(self) -> None:
        """Check that vectors can be searched here, then start embedding what is not."""
        if self.dialect == "postgresql":
            async with self.pool() as session:
                self.usable = await VectorRepository(session).has_pgvector()
                await session.commit()
            if not self.usable:
                log.warning(
                    "PostgreSQL has no pgvector extension (CREATE EXTENSION vector): recall "
                    "goes by words only"
                )
                return
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name="embeddings")

    def poke(self) -> None:
        """New turns were stored: embed them soon."""
        self._wake.set()

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        await self.embedder.close()

    async def catch_up(self) -> int:
        """Embed every turn and document part not embedded yet, batch by batch; the number
        embedded. Raises EmbeddingFailed or SQLAlchemyError when a batch cannot be done."""
        return await self._catch_up(parts=False) + await self._catch_up(parts=True)

    async def _catch_up(self, *, parts: bool) -> int:
        done = 0
        while True:
            mark = self._parts_mark if parts else self._mark
            async with self.pool() as session:
                vectors = VectorRepository(session)
                pending = vectors.pending_parts if parts else vectors.pending
                rows = await pending(after_id=mark, model=self.model, limit=self.batch)
            if not rows:
                return done
            embedded = await self._vectors([row[2] for row in rows])
            stored = [(row[0], row[1], v) for row, v in zip(rows, embedded, strict=True)]
            async with self.pool() as session:
                vectors = VectorRepository(session)
                store = vectors.store_parts if parts else vectors.store
                await store(self.model, stored)
                await session.commit()
            if parts:
                self._parts_mark = int(rows[-1][0])
            else:
                self._mark = int(rows[-1][0])
            done += len(rows)

    async def _run(self) -> None:
        delay = BACKOFF_FIRST
        while True:
            try:
                await self.catch_up()
            except (EmbeddingFailed, SQLAlchemyError, OSError) as exc:
                if self.failing_since is None:
                    self.failing_since = time.monotonic()
                    log.warning(
                        "Turns not embedded (%s); recall goes by words for them until the "
                        "embedding server answers",
                        exc,
                    )
                await asyncio.sleep(delay)
                delay = min(delay * 2, BACKOFF_LONGEST)
                continue
            if self.failing_since is not None:
                log.info("The embedding server answers again")
                self.failing_since = None
            delay = BACKOFF_FIRST
            self._wake.clear()
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(IDLE_SECONDS):
                    await self._wake.wait()

    async def _vectors(self, texts: Sequence[str]) -> list[list[float]]:
        """Vectors of `texts`, those embedded on the answer path taken from there."""
        known = {
            i: self._queries.pop(text) for i, text in enumerate(texts) if text in self._queries
        }
        missing = [i for i in range(len(texts)) if i not in known]
        if missing:
            fresh = await self.embedder.embed([texts[i] for i in missing])
            known.update(zip(missing, fresh, strict=True))
        return [known[i] for i in range(len(texts))]

    # --- on the answer path ----------------------------------------------------------------

    async def query(self, text: str) -> list[float] | None:
        """The new message's vector, or None when the server fails or is slower than
        EMBEDDINGS_TIMEOUT (recall then goes by words)."""
        if not self.usable or not text.strip():
            return None
        known = self._queries.get(text)  # asked for the same message already (its parts)
        if known is not None:
            return known
        try:
            async with asyncio.timeout(self.embedder.timeout):
                [vector] = await self.embedder.embed([text])
        except (TimeoutError, EmbeddingFailed, OSError) as exc:
            log.info("No embedding for the new message (%s): recall by words", exc)
            return None
        self._queries[text] = vector
        while len(self._queries) > QUERY_CACHE:
            self._queries.popitem(last=False)
        return vector

    async def nearest(
        self,
        session: AsyncSession,
        conversation_id: int,
        query: Sequence[float],
        *,
        before_id: int,
        limit: int,
        others: Sequence[int] = (),
    ) -> Sequence[TurnRow]:
        """The conversation's turns older than `before_id` (and the turns of the `others`
        conversations) nearest to `query`, nearest first; turns not embedded yet are not
        among them."""
        vectors = VectorRepository(session)
        if self.dialect == "postgresql":
            return await vectors.search_pgvector(
                conversation_id, self.model, query, before_id=before_id, limit=limit, others=others
            )
        scored = _scored(
            await self._matrix(vectors, "turns", conversation_id), query, limit, before_id=before_id
        )
        for other in others:
            scored += _scored(await self._matrix(vectors, "turns", other), query, limit)
        scored.sort(key=lambda pair: (-pair[1], -pair[0]))
        return await vectors.turns([i for i, _ in scored[:limit]])

    async def nearest_parts(
        self, session: AsyncSession, conversation_id: int, query: Sequence[float], *, limit: int
    ) -> Sequence[Row[int, str, int, int, str, int]]:
        """The conversation's document parts nearest to `query`, nearest first."""
        vectors = VectorRepository(session)
        if self.dialect == "postgresql":
            return await vectors.search_parts_pgvector(
                conversation_id, self.model, query, limit=limit
            )
        matrix = await self._matrix(vectors, "parts", conversation_id)
        return await vectors.parts([i for i, _ in _scored(matrix, query, limit)])

    async def _matrix(self, vectors: VectorRepository, kind: str, conversation_id: int) -> _Matrix:
        """The conversation's vectors of turns or parts, read once and then only those
        added since."""
        read = vectors.parts_of_conversation if kind == "parts" else vectors.of_conversation
        key = (kind, conversation_id)
        cached = self._matrices.pop(key, None)
        if cached is None:
            cached = _Matrix(*await read(conversation_id, self.model))
        else:
            ids, matrix = await read(conversation_id, self.model, after_id=cached.last_id)
            if len(ids):
                cached = _Matrix(
                    np.concatenate([cached.ids, ids]),
                    np.vstack([cached.vectors, matrix]) if len(cached.ids) else matrix,
                )
        self._matrices[key] = cached
        total = sum(m.size for m in self._matrices.values())
        while total > CACHE_BYTES and len(self._matrices) > 1:
            _, dropped = self._matrices.popitem(last=False)
            total -= dropped.size
        return cached

    def changed(self, conversation_id: int, message_id: int | None = None) -> None:
        """A turn of the conversation was rewritten (its vector deleted with its old text)
        or deleted: read the conversation's vectors again, and embed the turn anew (at the
        next poke, which comes once the answer to it is stored)."""
        self._matrices.pop(("turns", conversation_id), None)
        if message_id is not None:
            self._mark = min(self._mark, message_id - 1)


def _scored(
    matrix: _Matrix, query: Sequence[float], limit: int, *, before_id: int | None = None
) -> list[tuple[int, float]]:
    """(id, similarity) of the `limit` vectors most similar to `query` (all unit length:
    the dot product is the cosine), most similar first, ties to the newer; only ids below
    `before_id` when given."""
    if not len(matrix.ids) or limit <= 0:
        return []
    vector = np.asarray(query, dtype=np.float32)
    if matrix.vectors.shape[1] != vector.shape[0]:
        return []  # vectors of another size: a model changed under the same name
    ids, vectors = matrix.ids, matrix.vectors
    if before_id is not None:
        # The ids are in ascending order (read so, appended so): the older ones are a
        # prefix, taken as a view rather than a copy of the matrix.
        older = int(np.searchsorted(ids, before_id, side="left"))
        ids, vectors = ids[:older], vectors[:older]
        if not len(ids):
            return []
    scores = vectors @ vector
    count = min(limit, len(ids))
    best = np.argpartition(-scores, count - 1)[:count]
    ranked = best[np.lexsort((-ids[best], -scores[best]))]
    return [(int(ids[i]), float(scores[i])) for i in ranked]
