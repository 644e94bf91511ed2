"""A queue per user in Redis, ordered by update id, so that several processes answer one user
one message at a time and in the order Telegram received the messages."""

from __future__ import annotations

import asyncio
import bisect
import contextlib
import logging
import uuid
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field

from redis.asyncio import Redis
from redis.exceptions import MaxConnectionsError, RedisError

log = logging.getLogger(__name__)

# A process's liveness key lives this long unless it renews it: the queued updates of a
# process killed with SIGKILL are skipped after at most TTL. A user's queue key lives as
# long, renewed by every process with an update in it.
TTL = 30.0
# A process renews its liveness key, and the queues it has updates in, this often.
RENEW_EVERY = 10.0
# A waiter gives up waiting after this long and handles the message anyway (a message is
# never dropped for its turn).
MAX_WAIT = 120.0
# How often the first of a process's waiters for a user asks Redis whether its turn came.
POLL = 0.05
# A Redis that does not answer a waiter's call within this long counts as unreachable (the
# client has no timeout of its own).
CALL_TIMEOUT = 5.0
# With the client's connections all busy, leaving the queue is tried this many times, `POLL`
# apart, before it is left to the renewer (which the next waiter would wait for).
LEAVE_TRIES = 20

# Hand-written, because no maintained library offers a fair (FIFO) lock across processes
# for asyncio Redis: redis-py's `Lock` (which this replaced) and the lock recipes built like
# it are SET NX with polling waiters and no queue, so across processes whoever polls first
# after a release wins, and the process that just answered tends to take its own next
# message first; Redlock ports and aioredlock are the same with several servers.
#
# One call does all a waiter asks: renew this process's liveness key, put the update in the
# user's queue if it is not there (it was dropped if this process was thought dead), drop
# heads whose process's liveness key is gone, and when the update is the head and the
# caller may run, mark it running. A running update gets the score -1, so that an update
# with a lower id arriving late waits behind it rather than becoming the head beside it:
# only the head runs, and a head only leaves the queue when it is done or its process dead.
#
# KEYS[1] the user's queue, KEYS[2] this process's liveness key; ARGV: the member
# ("<update id>:<process token>"), the update id, the TTL in ms, the liveness keys' prefix,
# and 1 when the caller may run now. Returns 1 when it runs, 0 when it is the head but may
# not run yet, else the head's member. (The liveness keys of other processes are read by
# name: Redis Cluster would need them in one hash slot; the deployment has one Redis.)
_TURN = """
redis.call('SET', KEYS[2], '1', 'PX', ARGV[3])
if not redis.call('ZSCORE', KEYS[1], ARGV[1]) then
  redis.call('ZADD', KEYS[1], ARGV[2], ARGV[1])
end
redis.call('PEXPIRE', KEYS[1], ARGV[3])
for _ = 1, 1000 do
  local head = redis.call('ZRANGE', KEYS[1], 0, 0)[1]
  if head == ARGV[1] then
    if ARGV[5] == '1' then
      redis.call('ZADD', KEYS[1], -1, ARGV[1])
      return 1
    end
    return 0
  end
  local token = string.match(head, ':([^:]+)$')
  if token and redis.call('EXISTS', ARGV[4] .. token) == 1 then
    return head
  end
  redis.call('ZREM', KEYS[1], head)
end
return 0
"""


@dataclass(slots=True)
class _Local:
    """This process's updates of one user: the ids of those waiting for their turn, in
    order, and how many are being answered."""

    waiting: list[int] = field(default_factory=list)
    running: int = 0
    changed: asyncio.Event = field(default_factory=asyncio.Event)

    def notify(self) -> None:
        """Wake every waiter of this user in this process to look again."""
        self.changed.set()
        self.changed = asyncio.Event()


@dataclass(slots=True)
class _Entry:
    key: str
    member: str
    update_id: int
    queued: bool = False  # in the Redis queue, so it is removed at the end


class SharedUserLocks:
    """A sorted set per user in Redis (`<prefix>:queue:<bot id>:<user id>`) of the updates
    being answered or waiting, scored by update id (Telegram numbers updates in the order it
    received them); only its head is answered. Each process renews one liveness key
    (`<prefix>:alive:<token>`); a head whose process's key has expired is dropped by
    whoever sees it. The set is deleted by Redis when its last update leaves, and expires
    when no live process renews it.

    Every update enters the queue when it arrives, before it waits for anything, so that
    across processes the earlier of two waiting updates always goes first. In a process,
    only the first of a user's waiting updates (by update id) asks Redis, every `poll`
    seconds, and an answer ending here wakes the next at once. An update that arrives at
    Telegram earlier but at its process later than another update starts is answered after
    it: its place is only known once it arrives.

    Redis unreachable, or a wait past `max_wait`: a WARNING, and the message is answered
    anyway (in this process still one at a time, by update id).
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
        call_timeout: float = CALL_TIMEOUT,
        owns_client: bool = False,
    ) -> None:
        self.redis = redis
        self.prefix = prefix
        self.ttl = ttl
        self.renew_every = renew_every
        self.max_wait = max_wait
        self.poll = poll
        self.call_timeout = call_timeout
        self._owns_client = owns_client
        self.token = uuid.uuid4().hex
        self._turn = redis.register_script(_TURN)
        self._users: dict[tuple[int, int], _Local] = {}
        self._members: set[str] = set()  # this process's updates in the queues
        self._leftovers: set[tuple[str, str]] = set()  # (queue, member) not yet removed
        self._renewer: asyncio.Task[None] | None = None

    def key(self, bot_id: int, user_id: int) -> str:
        return f"{self.prefix}:queue:{bot_id}:{user_id}"

    def alive_key(self, token: str | None = None) -> str:
        return f"{self.prefix}:alive:{token or self.token}"

    def member(self, update_id: int) -> str:
        return f"{update_id}:{self.token}"

    @property
    def _ttl_ms(self) -> int:
        return max(1, int(self.ttl * 1000))

    @contextlib.asynccontextmanager
    async def hold(
        self,
        bot_id: int,
        user_id: int,
        update_id: int,
        queued: Callable[[], None] = lambda: None,
    ) -> AsyncIterator[bool]:
        """Run the block in the update's turn; yields whether Redis gave it the turn (False
        when Redis cannot be reached or the wait passed `max_wait`: answered anyway).
        `queued` is called once the update is in the queue (or Redis failed to take it)."""
        local = self._users.setdefault((bot_id, user_id), _Local())
        bisect.insort(local.waiting, update_id)
        entry = _Entry(self.key(bot_id, user_id), self.member(update_id), update_id)
        self._members.add(entry.member)
        self._keep_alive()
        try:
            try:
                had = await self._wait(local, entry, user_id, queued)
            finally:
                local.waiting.remove(update_id)
            local.running += 1
            try:
                yield had
            finally:
                local.running -= 1
        finally:
            self._members.discard(entry.member)
            if entry.queued:
                await self._leave(entry)
            local.notify()
            if not local.waiting and not local.running:
                self._users.pop((bot_id, user_id), None)

    async def _wait(
        self, local: _Local, entry: _Entry, user_id: int, queued: Callable[[], None]
    ) -> bool:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.max_wait
        shared = True
        while True:
            changed = local.changed
            first = local.waiting[0] == entry.update_id and not local.running
            # Only the first of this process's waiters asks Redis (and one not yet queued);
            # the others wait here for a change (an answer ending, a waiter going on).
            ask = first or not entry.queued
            if shared and ask:
                try:
                    async with asyncio.timeout(self.call_timeout):
                        head = await self._turn(
                            keys=[entry.key, self.alive_key()],
                            args=[
                                entry.member,
                                entry.update_id,
                                self._ttl_ms,
                                f"{self.prefix}:alive:",
                                int(first),
                            ],
                        )
                    entry.queued = True
                    queued()
                    if head == 1:
                        return True
                    if isinstance(head, bytes | str) and await self._drop_if_stale(entry, head):
                        continue
                except MaxConnectionsError:
                    # The client's connections are all busy (a burst in this process): not
                    # Redis failing; asked again after `poll`.
                    pass
                except (RedisError, TimeoutError) as exc:
                    log.warning(
                        "User %s: the Redis queue cannot be used (%s); answering without it",
                        user_id,
                        type(exc).__name__,
                    )
                    shared = False
                    queued()
                    continue
            elif not shared and first:
                return False
            remaining = deadline - loop.time()
            if remaining <= 0:
                log.warning(
                    "User %s: an earlier message was not done within %.0f s; answering anyway",
                    user_id,
                    self.max_wait,
                )
                return False
            timeout = min(self.poll, remaining) if shared and ask else remaining
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(changed.wait(), timeout)

    async def _drop_if_stale(self, entry: _Entry, head: bytes | str) -> bool:
        """A head of this process's own that it no longer handles (its removal failed) is
        removed here rather than waited for."""
        member = head.decode() if isinstance(head, bytes) else head
        if member.rpartition(":")[2] != self.token or member in self._members:
            return False
        await self.redis.zrem(entry.key, member)
        self._leftovers.discard((entry.key, member))
        return True

    async def _leave(self, entry: _Entry) -> None:
        try:
            for _ in range(LEAVE_TRIES - 1):
                try:
                    await self.redis.zrem(entry.key, entry.member)
                except MaxConnectionsError:
                    await asyncio.sleep(self.poll)
                else:
                    return
            await self.redis.zrem(entry.key, entry.member)
        except RedisError as exc:
            log.warning(
                "An update stayed in the Redis queue (%s); removing it later",
                type(exc).__name__,
            )
            self._leftovers.add((entry.key, entry.member))
            self._keep_alive()

    def _keep_alive(self) -> None:
        if self._renewer is None or self._renewer.done():
            self._renewer = asyncio.create_task(self._renew())

    async def _renew(self) -> None:
        """While this process has updates in a queue: renew its liveness key and those
        queues (an answer may run longer than TTL), and retry removals that failed."""
        while self._users or self._leftovers:
            await asyncio.sleep(self.renew_every)
            leftovers = set(self._leftovers)
            try:
                async with self.redis.pipeline(transaction=False) as pipe:
                    pipe.set(self.alive_key(), 1, px=self._ttl_ms)
                    for bot_id, user_id in list(self._users):
                        pipe.pexpire(self.key(bot_id, user_id), self._ttl_ms)
                    for key, member in leftovers:
                        pipe.zrem(key, member)
                    await pipe.execute()
            except RedisError as exc:
                # Tried again at the next tick; the TTL leaves room for two misses.
                log.warning(
                    "The Redis queue's liveness key was not renewed (%s)", type(exc).__name__
                )
            else:
                self._leftovers -= leftovers

    async def close(self) -> None:
        if self._renewer is not None:
            self._renewer.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._renewer
        with contextlib.suppress(RedisError, TimeoutError):
            async with asyncio.timeout(self.call_timeout):
                await self.redis.delete(self.alive_key())
        if self._owns_client:
            await self.redis.aclose()
