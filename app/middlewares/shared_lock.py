"""A per-user lock in Redis, so that several processes answer one user one message at a time."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import AsyncIterator

from redis.asyncio import Redis
from redis.asyncio.lock import Lock
from redis.exceptions import RedisError

from app.services.redis_locks import kept

log = logging.getLogger(__name__)

# The lock lives this long unless its holder renews it: a holder killed with SIGKILL frees
# the user after at most TTL.
TTL = 30.0
# The holder renews it this often, so a long answer keeps it.
RENEW_EVERY = 10.0
# A waiter gives up waiting after this long and handles the message anyway (a message is
# never dropped for a lock).
MAX_WAIT = 120.0
# How often a waiter asks Redis whether the lock is free.
POLL = 0.05


class SharedUserLocks:
    """redis-py's own `Lock` (SET NX PX with a random token, released and extended by Lua
    scripts that check the token), one per user, renewed by its holder while it is held.

    Waiters poll (redis-py's lock does): across processes there is no FIFO, so two messages
    of one user arriving at two processes within the same moment may be answered in either
    order, but never at the same time. Within a process the asyncio lock in front of this
    one keeps arrival order.
    """

    def __init__(
        self,
        redis: Redis,
        *,
        prefix: str = "tba",
        ttl: float = TTL,
        renew_every: float = RENEW_EVERY,
        max_wait: float = MAX_WAIT,
        poll: float = POLL,
        owns_client: bool = False,
    ) -> None:
        self.redis = redis
        self.prefix = prefix
        self.ttl = ttl
        self.renew_every = renew_every
        self.max_wait = max_wait
        self.poll = poll
        self._owns_client = owns_client

    def key(self, bot_id: int, user_id: int) -> str:
        return f"{self.prefix}:serial:{bot_id}:{user_id}"

    def lock(self, bot_id: int, user_id: int) -> Lock:
        # thread_local=False: every acquisition gets its own Lock object, and asyncio tasks
        # share one thread, so a thread-local token would buy nothing.
        return self.redis.lock(
            self.key(bot_id, user_id),
            timeout=self.ttl,
            sleep=self.poll,
            blocking=True,
            blocking_timeout=self.max_wait,
            thread_local=False,
        )

    @contextlib.asynccontextmanager
    async def hold(self, bot_id: int, user_id: int) -> AsyncIterator[bool]:
        """Hold the user's lock for the block; yields whether it was had (a Redis that cannot
        be reached, or a wait past `max_wait`, lets the message through with a WARNING)."""
        lock = self.lock(bot_id, user_id)
        try:
            acquired = bool(await lock.acquire())
        except RedisError as exc:
            log.warning(
                "User %s: the Redis lock cannot be taken (%s); answering without it",
                user_id,
                type(exc).__name__,
            )
            acquired = False
        else:
            if not acquired:
                log.warning(
                    "User %s: another process held the lock for over %.0f s; answering anyway",
                    user_id,
                    self.max_wait,
                )
        if not acquired:
            yield False
            return
        async with kept(lock, f"User {user_id}", self.renew_every):
            yield True

    async def close(self) -> None:
        if self._owns_client:
            await self.redis.aclose()
