"""FSM storage in our own database, so dialogs survive a restart without Redis.

aiogram ships Memory, Redis and Mongo storages; none keeps state in a SQL database, and the
packages that do are SQLite-only. This one runs on whatever DATABASE_URL points to.
"""

from __future__ import annotations

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
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.db.models import FsmRecord
from app.db.session import current_session


class SqlStorage(BaseStorage):
    """One row per (chat, user): the state and the data of the dialog."""

    def __init__(
        self, pool: async_sessionmaker[AsyncSession], key_builder: KeyBuilder | None = None
    ) -> None:
        self.pool = pool
        self.key_builder = key_builder or DefaultKeyBuilder(with_bot_id=True, with_destiny=True)

    async def set_state(self, key: StorageKey, state: StateType = None) -> None:
        value = state.state if isinstance(state, State) else state
        await self._write(key, state=value)

    async def get_state(self, key: StorageKey) -> str | None:
        record = await self._read(key)
        return record.state if record else None

    async def set_data(self, key: StorageKey, data: Mapping[str, Any]) -> None:
        await self._write(key, data=dict(data))

    async def get_data(self, key: StorageKey) -> dict[str, Any]:
        record = await self._read(key)
        return dict(record.data) if record else {}

    async def close(self) -> None:
        """The engine belongs to the app, which disposes of it."""

    async def _read(self, key: StorageKey) -> FsmRecord | None:
        name = self.key_builder.build(key)
        if (session := current_session.get()) is not None:
            return await session.get(FsmRecord, name)
        async with self.pool() as session:
            return await session.get(FsmRecord, name)

    async def _write(self, key: StorageKey, **values: Any) -> None:
        if (session := current_session.get()) is not None:
            # Inside a handler: part of its transaction, committed with its other changes.
            await self._apply(session, self.key_builder.build(key), values)
            return
        async with self.pool() as session, session.begin():
            await self._apply(session, self.key_builder.build(key), values)

    @staticmethod
    async def _apply(session: AsyncSession, name: str, values: dict[str, Any]) -> None:
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
