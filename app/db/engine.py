"""The async engine and session factory, with SQLite tuned for a concurrent bot."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import event
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)


def create_engine(url: str) -> AsyncEngine:
    """Create the engine; a SQLite file's folder is created on first run.

    `hide_parameters`: a failing statement's error (and SQL echo, where someone turns it on)
    shows the SQL without its bound values, which are users' messages.
    """
    parsed = make_url(url)
    if parsed.get_backend_name() == "postgresql":
        # asyncpg prepares every statement, and after five runs PostgreSQL may plan one
        # for any value of its parameters (a generic plan). For full-text recall that plan
        # walks the conversation's turns by id and parses each one, instead of asking the
        # GIN index for the words at hand: 116 ms instead of 4 ms at 10,000 turns (bench/
        # recall.py). Planning each statement for its values costs a fraction of a ms.
        return create_async_engine(
            url,
            pool_pre_ping=True,
            hide_parameters=True,
            connect_args={"server_settings": {"plan_cache_mode": "force_custom_plan"}},
        )
    if parsed.get_backend_name() != "sqlite":
        return create_async_engine(url, pool_pre_ping=True, hide_parameters=True)
    if parsed.database and parsed.database != ":memory:":
        Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
    engine = create_async_engine(url, connect_args={"timeout": 30}, hide_parameters=True)
    event.listen(engine.sync_engine, "connect", _sqlite_pragmas)
    return engine


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    # WAL lets readers go on while one user's answer is written; foreign keys are off
    # by default in SQLite; NORMAL sync is durable enough in WAL mode and much faster.
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.close()


def create_sessionmaker(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    return async_sessionmaker(engine, expire_on_commit=False)


class WriteGate:
    """Lets the chat path's database work into SQLite one message at a time, in order.

    SQLite has one writer at a time; the others wait in its busy handler, which polls with
    sleeps of 1, 2, 5, 10, ... up to 100 ms (Python's sqlite3 cannot install another), so
    with many users at once a write waits far longer than the writes ahead of it take. An
    asyncio lock hands over at once and in order. bench/load.py at 50 users, three runs
    each: 0.77-0.85x the minimal bot's throughput with it, 0.72-0.79x without; p99 1.2-1.5 s
    against 1.9-3.0 s. PostgreSQL needs none: a no-op there.
    """

    def __init__(self, serialize: bool = False) -> None:
        self._lock: asyncio.Lock | None = asyncio.Lock() if serialize else None

    @classmethod
    def for_engine(cls, engine: AsyncEngine) -> WriteGate:
        return cls(serialize=engine.url.get_backend_name() == "sqlite")

    @asynccontextmanager
    async def section(self, session: AsyncSession) -> AsyncIterator[None]:
        """Around reads that lead to a write and its commit. `session` must hold no
        uncommitted write on entry: its connection goes back to the pool first, because a
        session waiting here must hold neither SQLite's write lock nor a connection that
        the gate's holder may need."""
        if self._lock is None:
            yield
            return
        await session.rollback()
        async with self._lock:
            yield
