"""A stop that reaches the answer on whichever process streams it: Redis pub/sub between the
processes of one bot, each applying what it hears to its own `Generations`."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import uuid
from typing import Any

from redis.asyncio import Redis
from redis.asyncio.client import PubSub
from redis.exceptions import RedisError

from app.services.generations import Generations

log = logging.getLogger(__name__)

# How long a /stop that no local answer took waits to hear whether another process took it.
REPLY_WAIT = 0.5
# How long the listener waits before subscribing again after Redis went away.
RESUBSCRIBE_DELAY = 1.0


class SharedStops:
    """One listener task per process on `<prefix>:stop:<bot_id>`; a stop that finds no local
    answer is published there with a reply channel of its own.

    The rule for "No answer is being written now": every listener (the sender's own
    included) answers on the reply channel, "1" when it stopped an answer and "0" when it
    had none. The sender counts the receivers PUBLISH reports and waits until one says "1"
    (stopped: say nothing), all have said "0", or `reply_wait` (0.5 s) passes (nothing
    stopped: say so). A process too slow to answer within it may still stop the answer; the
    user then sees both the note and the stopped answer, never a stop that silently failed.

    Pub/sub channels are not keys and ignore the Redis database number, hence the bot id in
    the channel's name.
    """

    def __init__(
        self,
        redis: Redis,
        generations: Generations,
        *,
        prefix: str = "tba",
        reply_wait: float = REPLY_WAIT,
        owns_client: bool = False,
    ) -> None:
        self.redis = redis
        self.generations = generations
        self.prefix = prefix
        self.reply_wait = reply_wait
        self._owns_client = owns_client
        self._bot_id: int | None = None
        self._listener: asyncio.Task[None] | None = None

    def channel(self, bot_id: int) -> str:
        return f"{self.prefix}:stop:{bot_id}"

    async def start(self, bot_id: int) -> None:
        """Subscribe before returning (a stop published once start-up is done is heard),
        then listen in a kept task; an unreachable Redis is retried in the background."""
        self._bot_id = bot_id
        pubsub = self.redis.pubsub(ignore_subscribe_messages=True)
        subscribed: PubSub | None = pubsub
        try:
            await pubsub.subscribe(self.channel(bot_id))
        except RedisError as exc:
            log.warning("Stops from other processes are not heard yet (%s)", type(exc).__name__)
            await _close(pubsub)
            subscribed = None
        self._listener = asyncio.create_task(self._listen(bot_id, subscribed))

    async def stop(self, chat_id: int, draft_id: int | None = None) -> bool:
        """Stop the chat's answer here or on another process; False when none took it."""
        if self.generations.stop(chat_id, draft_id):
            return True
        if self._bot_id is None:
            return False
        reply = f"{self.prefix}:stopped:{self._bot_id}:{uuid.uuid4().hex}"
        payload = json.dumps({"chat_id": chat_id, "draft_id": draft_id, "reply": reply})
        pubsub = self.redis.pubsub(ignore_subscribe_messages=True)
        try:
            # Subscribed before publishing, so no answer can come before we listen.
            await pubsub.subscribe(reply)
            receivers = int(await self.redis.publish(self.channel(self._bot_id), payload))
            return await self._took(pubsub, receivers)
        except RedisError as exc:
            log.warning("A stop could not be passed on (%s)", type(exc).__name__)
            return False
        finally:
            await _close(pubsub)

    async def _took(self, pubsub: PubSub, receivers: int) -> bool:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.reply_wait
        heard = 0
        while heard < receivers:
            remaining = deadline - loop.time()
            if remaining <= 0:
                return False
            message = await pubsub.get_message(timeout=remaining)
            if message is None or message.get("type") != "message":
                continue
            heard += 1
            if message["data"] == b"1":
                return True
        return False

    async def _listen(self, bot_id: int, pubsub: PubSub | None) -> None:
        try:
            while True:
                try:
                    if pubsub is None:
                        pubsub = self.redis.pubsub(ignore_subscribe_messages=True)
                        await pubsub.subscribe(self.channel(bot_id))
                        log.info("Stops from other processes are heard again")
                    async for message in pubsub.listen():
                        if message.get("type") == "message":
                            await self._apply(message["data"])
                except RedisError as exc:
                    log.warning(
                        "Stops from other processes are not heard (%s); subscribing again",
                        type(exc).__name__,
                    )
                    await _close(pubsub)
                    pubsub = None
                    await asyncio.sleep(RESUBSCRIBE_DELAY)
        finally:
            # Cancelled at shutdown: give the connection back.
            await _close(pubsub)

    async def _apply(self, data: bytes) -> None:
        try:
            stop: dict[str, Any] = json.loads(data)
            chat_id = int(stop["chat_id"])
            draft_id = None if stop.get("draft_id") is None else int(stop["draft_id"])
            reply = stop.get("reply")
        except (ValueError, KeyError, TypeError):
            log.warning("A malformed stop was ignored")
            return
        took = self.generations.stop(chat_id, draft_id)
        if isinstance(reply, str):
            try:
                await self.redis.publish(reply, b"1" if took else b"0")
            except RedisError as exc:
                log.warning("A stop's answer was not sent (%s)", type(exc).__name__)

    async def close(self) -> None:
        if self._listener is not None:
            self._listener.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._listener
            self._listener = None
        if self._owns_client:
            await self.redis.aclose()


async def _close(pubsub: PubSub | None) -> None:
    if pubsub is None:
        return
    with contextlib.suppress(RedisError, OSError):
        await pubsub.aclose()  # type: ignore[no-untyped-call]
