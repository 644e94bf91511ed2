"""One database session per handled event."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Any

from aiogram import BaseMiddleware
from aiogram.types import TelegramObject
from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from sqlalchemy.orm import Session

from app.db.models import ProcessedUpdate
from app.db.session import current_session
from app.db.updates import ProcessedUpdates, record_statement

log = logging.getLogger(__name__)


class DbSessionMiddleware(BaseMiddleware):
    """One session per message or button press, committed when the handler succeeds.

    An outer middleware, not an inner one: access is decided from the database for every
    message before any handler is chosen, so a session is needed there anyway, and one
    session serves the access check, the handler and the dialog state (one connection per
    update instead of four: see bench/load.py).

    Not `session.begin()` as a block: a chat answer commits the user's message itself while
    it asks the model, so that no transaction stays open while the answer streams.
    """

    def __init__(self, pool: async_sessionmaker[AsyncSession], updates: ProcessedUpdates) -> None:
        self.pool = pool
        self.updates = updates

    async def __call__(
        self,
        handler: Callable[[TelegramObject, dict[str, Any]], Awaitable[Any]],
        event: TelegramObject,
        data: dict[str, Any],
    ) -> Any:
        async with self.pool() as session:
            update = data.get("event_update")
            if update is not None:
                claims_first = self.updates.claims_first(session)
                if claims_first:
                    claimed = await self.updates.claim(session, update.update_id)
                    if not claimed:
                        log.info("Update %s was handled elsewhere; not answered", update.update_id)
                        return None
                elif await self.updates.handled(session, update.update_id):
                    log.info("Update %s was handled before; not answered again", update.update_id)
                    return None
                else:
                    claimed = False
                _mark_processed_on_commit(
                    session,
                    self.updates,
                    update.update_id,
                    claimed=claimed,
                    shared=claims_first or self.updates.shared,
                )
            data["session"] = session
            token = current_session.set(session)
            try:
                result = await handler(event, data)
                await session.commit()
            finally:
                current_session.reset(token)
            return result


def _mark_processed_on_commit(
    session: AsyncSession,
    updates: ProcessedUpdates,
    update_id: int,
    *,
    claimed: bool,
    shared: bool,
) -> None:
    """The update is recorded as handled by the first commit of its session: with the user's
    message for a chat answer, with the step's changes for a dialog. A redelivered update
    (webhook retries, a restart before the polling offset was confirmed) is then skipped.

    `claimed`: the record is in the transaction already (PostgreSQL claims first). A handler
    that rolls back before the first commit takes the claim with it; it is then written
    again, doing nothing should another process have recorded the update meanwhile."""
    info = session.sync_session.info
    info["update_recorded"] = claimed

    def record(sync_session: Session) -> None:
        if not info.get("update_recorded"):
            info["update_recorded"] = True
            if shared:
                sync_session.execute(record_statement(sync_session, update_id))
            else:
                sync_session.add(ProcessedUpdate(update_id=update_id))

    def remember(sync_session: Session) -> None:
        if info.get("update_recorded") and not info.get("update_committed"):
            info["update_committed"] = True
            updates.record(update_id)

    def forget(sync_session: Session, previous: object) -> None:
        if not info.get("update_committed"):
            info["update_recorded"] = False

    event.listen(session.sync_session, "before_commit", record)
    event.listen(session.sync_session, "after_commit", remember)
    event.listen(session.sync_session, "after_soft_rollback", forget)
