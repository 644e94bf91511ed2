"""One summary at a time per conversation across processes: a non-blocking Redis lock that
the summariser (app/memory/summary.py) takes before its background run."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import AsyncIterator

from redis.asyncio import Redis
from redis.exceptions import RedisError

from app.services.redis_locks import kept

log = logging.getLogger(__name__)

# Renewed by its holder rather than sized to the longest run (MAX_ROUNDS calls, each up to
# the OpenAI timeout and its retries): a run of any length keeps it, and a holder killed
# with SIGKILL frees the conversation after at most TTL.
TTL = 30.0
RENEW_EVERY = 10.0


class SharedSummaryLocks:
    """redis-py's `Lock` per conversation, taken without waiting: a process that finds it
    held skips the run, since the holder is folding the same turns."""

    def __init__(
        self,
        redis: Redis,
        *,
        bot_id: int,
        prefix: str = "tba",
        ttl: float = TTL,
        renew_every: float = RENEW_EVERY,
        owns_client: bool = False,
    ) -> None:
        self.redis = redis
        self.bot_id = bot_id
        self.prefix = prefix
        self.ttl = ttl
        self.renew_every = renew_every
        self._owns_client = owns_client

    def key(self, conversation_id: int) -> str:
        # The bot id keeps two bots that share a Redis (each with its own database, so
        # with overlapping conversation ids) apart.
        return f"{self.prefix}:summary:{self.bot_id}:{conversation_id}"

    @contextlib.asynccontextmanager
    async def hold(self, conversation_id: int) -> AsyncIterator[bool]:
        """Yields whether this process may summarise now: False while another holds it. A
        Redis that cannot be reached yields True with a WARNING: the database keeps a second
        summary from overwriting the first (save_summary checks what it covered)."""
        lock = self.redis.lock(
            self.key(conversation_id), timeout=self.ttl, blocking=False, thread_local=False
        )
        try:
            acquired = bool(await lock.acquire())
        except RedisError as exc:
            log.warning(
                "Conversation %s: the summary lock cannot be taken (%s); summarising anyway",
                conversation_id,
                type(exc).__name__,
            )
            yield True
            return
        if not acquired:
            yield False
            return
        async with kept(lock, f"Conversation {conversation_id}", self.renew_every):
            yield True

    async def close(self) -> None:
        if self._owns_client:
            await self.redis.aclose()
