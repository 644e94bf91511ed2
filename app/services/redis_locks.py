"""Holding a redis-py `Lock` for as long as a block runs: renewed by its holder, released at
the end. The per-conversation summary lock (app/services/summary_locks.py) is held this way.
(One user's messages wait in a queue of their own instead: app/middlewares/shared_lock.py.)"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator

from redis.asyncio.lock import Lock
from redis.exceptions import LockError, LockNotOwnedError, RedisError

log = logging.getLogger(__name__)


@contextlib.asynccontextmanager
async def kept(lock: Lock, what: str, renew_every: float) -> AsyncIterator[None]:
    """Run the block with `lock` (already acquired) renewed every `renew_every` seconds, then
    release it. `what` names the lock in the log ("User 7", "Conversation 3")."""
    renewer = asyncio.create_task(_renew(lock, what, renew_every))
    try:
        yield
    finally:
        renewer.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await renewer
        try:
            await lock.release()
        except LockError:
            log.warning("%s: the lock had expired before it was released", what)
        except RedisError as exc:
            # It expires by itself within its TTL.
            log.warning("%s: the lock was not released (%s)", what, type(exc).__name__)


async def _renew(lock: Lock, what: str, renew_every: float) -> None:
    while True:
        await asyncio.sleep(renew_every)
        try:
            await lock.reacquire()
        except LockNotOwnedError:
            log.warning("%s: the lock expired while held; another may take it", what)
            return
        except RedisError as exc:
            # Tried again at the next tick; the TTL leaves room for two misses.
            log.warning("%s: the lock was not renewed (%s)", what, type(exc).__name__)
