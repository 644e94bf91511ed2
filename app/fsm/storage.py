"""FSM storage in our own database, so dialogs survive a restart without Redis.

aiogram ships Memory, Redis and Mongo storages; none keeps state in a SQL database, and the
packages that do are SQLite-only. This one runs on whatever DATABASE_URL points to.

aiogram reads the state of every update before any handler runs; almost always there is
none. The storage keeps what it read and wrote in a bounded cache, so that read costs no
query. That holds while one process serves the bot; several processes set REDIS_URL and
use aiogram's RedisStorage instead.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Mapping
from typing import Any

from aiogram.fsm.state import State
from aiogram.fsm.storage.base import (
    BaseStorage,
    DefaultKeyBuilder,
    KeyBuilder,
    StateType,
    StorageKey,
)
from aiogram.fsm.storage.redis import RedisStorage
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.db.models import FsmRecord
from app.db.session import current_session


class SqlStorage(BaseStorage):
    """One row per (chat, user): the state and the data of the dialog."""

    def __init__(
        self,
        pool: async_sessionmaker[AsyncSession],
        key_builder: KeyBuilder | None = None,
        cache_size: int = 10_000,
    ) -> None:
        self.pool = pool
        self.key_builder = key_builder or DefaultKeyBuilder(with_bot_id=True, with_destiny=True)
        self._cache: OrderedDict[str, tuple[str | None, dict[str, Any]]] = OrderedDict()
        self._cache_size = cache_size

    async def set_state(self, key: StorageKey, state: StateType = None) -> None:
        value = state.state if isinstance(state, State) else state
        await self._write(key, state=value)

    async def get_state(self, key: StorageKey) -> str | None:
        return (await self._read(key))[0]

    async def set_data(self, key: StorageKey, data: Mapping[str, Any]) -> None:
        await self._write(key, data=dict(data))

    async def get_data(self, key: StorageKey) -> dict[str, Any]:
        return dict((await self._read(key))[1])

    async def close(self) -> None:
        """The engine belongs to the app, which disposes of it."""

    async def _read(self, key: StorageKey) -> tuple[str | None, dict[str, Any]]:
        name = self.key_builder.build(key)
        if (cached := self._cache.get(name)) is not None:
            self._cache.move_to_end(name)
            return cached
        if (session := current_session.get()) is not None:
            record = await session.get(FsmRecord, name)
        else:
            async with self.pool() as own:
                record = await own.get(FsmRecord, name)
        value = (record.state, dict(record.data)) if record else (None, {})
        self._remember(name, value)
        return value

    async def _write(self, key: StorageKey, **values: Any) -> None:
        name = self.key_builder.build(key)
        if (session := current_session.get()) is not None:
            # Inside a handler: part of its transaction, committed with its other changes,
            # or rolled back with them; so the cache forgets the key rather than learn it.
            await self._apply(session, name, values)
            self._cache.pop(name, None)
            return
        else:
            async with self.pool() as own, own.begin():
                value = await self._apply(own, name, values)
        self._remember(name, value)

    def _remember(self, name: str, value: tuple[str | None, dict[str, Any]]) -> None:
        self._cache[name] = value
        self._cache.move_to_end(name)
        if len(self._cache) > self._cache_size:
            self._cache.popitem(last=False)

    @staticmethod
    async def _apply(
        session: AsyncSession, name: str, values: dict[str, Any]
    ) -> tuple[str | None, dict[str, Any]]:
        record = await session.get(FsmRecord, name)
        state = values.get("state", record.state if record else None)
        data = values.get("data", record.data if record else {})
        if state is None and not data:
            # A finished dialog leaves nothing behind.
            if record is not None:
                await session.delete(record)
        elif record is None:
            session.add(FsmRecord(key=name, state=state, data=data))
        else:
            record.state, record.data = state, data
        await session.flush()
        return state, dict(data)


class AppRedisStorage(RedisStorage):
    """aiogram's RedisStorage, closed by the app after the answers in flight have finished.

    aiogram closes the storage in its first shutdown hook, before ours lets the updates in
    flight finish; a dialog step finishing then would find the connection closed.
    """

    async def close(self) -> None:
        """Left open for the updates in flight; see `close_now`."""

    async def close_now(self) -> None:
        await super().close()
