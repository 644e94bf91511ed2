"""The session of the update being handled, for code that aiogram calls without it."""

from __future__ import annotations

from contextvars import ContextVar

from sqlalchemy.ext.asyncio import AsyncSession

# Set by DbSessionMiddleware around a handler. The FSM storage writes through it, so a
# dialog's state commits together with the data the step changed, and on SQLite a second
# connection never waits for the write lock the handler's own session holds.
current_session: ContextVar[AsyncSession | None] = ContextVar("current_session", default=None)
