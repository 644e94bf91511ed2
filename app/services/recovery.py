"""Answers interrupted by a crash are not silently lost.

The user's turn is committed before the model is asked, together with a `PendingAnswer`
row; the stored answer (or the note that tells the user why there is none) deletes it in
the same commit. A process killed mid-answer (SIGKILL, the OOM killer, a lost machine)
leaves the row behind. Each process beats a heartbeat on the rows it is writing, and
sweeps for rows whose heartbeat went stale: it takes one (an UPDATE that only one process
can win), tells the user in their language, as a reply to their message, that the answer
was cut off and /retry gets it, and deletes the row. So within `stale_after` plus one sweep
(40 s by default) some replica, or the next start of the only one, speaks up.

Hand-written: what must survive is a row in our own database (a queue in Redis would not
exist without REDIS_URL, and would not be in the same transaction as the turn).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from collections.abc import Coroutine
from datetime import timedelta
from typing import Any

from aiogram import Bot
from aiogram.exceptions import TelegramAPIError, TelegramBadRequest, TelegramForbiddenError
from aiogram.types import ReplyParameters
from aiogram.utils.i18n import I18n
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app import texts
from app.db import pending
from app.db.engine import WriteGate
from app.domain.clock import utcnow
from app.i18n import locale_for

log = logging.getLogger(__name__)

# An answer not heard of for this long was interrupted (CHAT_INTERRUPTED_AFTER).
STALE_AFTER = 30.0


class InterruptedAnswers:
    """The answers this process is writing, their heartbeat, and the sweep for answers that
    other processes (or this one's previous life) stopped writing.

    `shared`: other processes may be writing answers right now (PostgreSQL or Redis), so
    only a stale heartbeat says an answer was interrupted. Alone (SQLite), every answer
    left from before this start was interrupted, and the first sweep says so at once."""

    def __init__(
        self,
        pool: async_sessionmaker[AsyncSession],
        i18n: I18n,
        *,
        gate: WriteGate | None = None,
        shared: bool = False,
        stale_after: float = STALE_AFTER,
    ) -> None:
        self.pool = pool
        self.i18n = i18n
        self.gate = gate or WriteGate()
        self.shared = shared
        self.stale_after = stale_after
        # Beat and sweep three times per stale period: a live process's rows never look
        # stale, and a dead one's are found within stale_after + stale_after / 3.
        self.every = stale_after / 3
        self.owner = uuid.uuid4().hex
        self._writing: set[int] = set()  # conversations whose answer this process writes
        self._task: asyncio.Task[None] | None = None

    # --- the answers this process writes ---------------------------------------------------

    def begin(
        self,
        session: AsyncSession,
        *,
        conversation_id: int,
        user_id: int,
        chat_id: int,
        reply_to: int | None,
    ) -> None:
        """Record the answer in the session's transaction: committed with the user's turn."""
        pending.add(
            session,
            conversation_id=conversation_id,
            user_id=user_id,
            chat_id=chat_id,
            reply_to=reply_to,
            owner=self.owner,
        )
        self._writing.add(conversation_id)

    def writing(self, conversation_id: int) -> bool:
        return conversation_id in self._writing

    async def end(self, session: AsyncSession, conversation_id: int) -> None:
        """The answer is settled; deleted by the session's next commit."""
        if conversation_id in self._writing:
            await pending.remove(session, conversation_id=conversation_id, owner=self.owner)
            self._writing.discard(conversation_id)

    def abandon(self, conversation_id: int) -> None:
        """The answer was cancelled (shutdown) or its settling failed: no more heartbeat, so
        a sweep finds it and tells the user."""
        self._writing.discard(conversation_id)

    # --- the heartbeat and the sweep -------------------------------------------------------

    async def start(self, bot: Bot) -> None:
        """Sweep once now (alone: for whatever the previous run left), then keep beating and
        sweeping in the background."""
        await self._safely(self.sweep(bot, everything=not self.shared))
        self._task = asyncio.create_task(self._run(bot), name="interrupted-answers")

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    async def _run(self, bot: Bot) -> None:
        while True:
            await asyncio.sleep(self.every)
            await self._safely(self.beat())
            await self._safely(self.sweep(bot))

    async def _safely(self, work: Coroutine[Any, Any, object]) -> None:
        try:
            await work
        except (SQLAlchemyError, OSError) as exc:
            # The database is away for a moment: the next round tries again.
            log.warning("Interrupted answers: %s; trying again later", type(exc).__name__)

    async def beat(self) -> None:
        """Tell the others this process still writes its answers (one UPDATE, and none at
        all while it writes nothing)."""
        if not self._writing:
            return
        async with self.pool() as session, self.gate.section(session):
            await pending.beat(session, self.owner, tuple(self._writing))
            await session.commit()

    async def sweep(self, bot: Bot, *, everything: bool = False) -> int:
        """Tell the users of interrupted answers; how many were told. `everything`: every
        answer not written by this process now was interrupted (the only process, starting)."""
        cutoff = utcnow() if everything else utcnow() - timedelta(seconds=self.stale_after)
        async with self.pool() as session:
            found = await pending.stale(session, before=cutoff)
        told = 0
        for lost in found:
            if lost.owner == self.owner and lost.conversation_id in self._writing:
                continue  # being written here right now (its beat is merely late)
            async with self.pool() as session, self.gate.section(session):
                taken = await pending.take(session, lost.id, owner=self.owner, stale_before=cutoff)
                await session.commit()
            if not taken:
                continue  # another process took it, or its writer beat meanwhile
            if await self._tell(bot, lost):
                async with self.pool() as session, self.gate.section(session):
                    await pending.forget(session, lost.id)
                    await session.commit()
                told += 1
        if found:
            log.info("Interrupted answers: %d found, %d users told", len(found), told)
        return told

    async def _tell(self, bot: Bot, lost: pending.Interrupted) -> bool:
        """True when the user was told, or can never be (blocked the bot, chat gone); False
        to try again at a later sweep (the row is ours with a fresh heartbeat until then)."""
        with (
            self.i18n.context(),
            self.i18n.use_locale(locale_for(lost.language, lost.telegram_language)),
        ):
            text = texts.answer_lost()
        reply = (
            ReplyParameters(message_id=lost.reply_to, allow_sending_without_reply=True)
            if lost.reply_to is not None
            else None
        )
        try:
            await bot.send_message(lost.chat_id, text, reply_parameters=reply)
        except (TelegramForbiddenError, TelegramBadRequest) as exc:
            log.info(
                "User %s cannot be told of a lost answer: %s", lost.user_id, type(exc).__name__
            )
        except (TelegramAPIError, OSError, TimeoutError) as exc:  # a 5xx, a 429, the network
            log.warning(
                "User %s not told of a lost answer yet: %s", lost.user_id, type(exc).__name__
            )
            return False
        return True
