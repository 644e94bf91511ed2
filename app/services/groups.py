"""Groups the bot is added to: allowed at once when a bot admin adds it, otherwise waiting
for an admin's Approve or Deny; silent wherever it is not allowed, and for good once it is
removed (until it is added again)."""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable
from dataclasses import dataclass

from aiogram import Bot
from aiogram.exceptions import TelegramAPIError
from aiogram.types import ReplyParameters
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.config import AccessSettings
from app.db.groups import GroupRepository
from app.db.messages import MessageRepository
from app.db.models import Group
from app.db.personas import PersonaRepository
from app.delivery.ephemeral import tell_one
from app.delivery.pacing import ChatPacer
from app.domain.enums import AnswerLength, BudgetUnit, GroupMembers, GroupStatus
from app.domain.rights import Right
from app.domain.usage import Limits
from app.domain.user_admin import InvalidBudget
from app.domain.users import UserContext

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class GroupView:
    chat_id: int
    title: str
    status: GroupStatus
    members: GroupMembers
    persona_id: int | None
    added_by: int | None
    # The group's /settings: None language is each member's own.
    language: str | None = None
    answer_length: AnswerLength = AnswerLength.NORMAL
    listen: bool = False
    # The group's own budget; None: no limit of its own.
    budget: Limits | None = None
    # `members` is the group's own choice, not the owner's GROUP_MEMBERS.
    members_own: bool = False


# What one heard message may bring into the next answer, and all of them together (the
# newest kept): context, not a second question.
HEARD_MESSAGE_CHARS = 500
HEARD_TOTAL_CHARS = 3000
# How long a process trusts what it read of a group's "listen" (another replica's change
# reaches it within this time; this process's own changes at once).
LISTEN_CACHE_SECONDS = 30.0


class GroupService:
    def __init__(
        self,
        access: AccessSettings,
        pacer: ChatPacer | None = None,
        pool: async_sessionmaker[AsyncSession] | None = None,
        *,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.access = access
        # The chat service's: every message the bot puts in a group counts against
        # Telegram's limit, notes as well as answers (app/delivery/pacing.py).
        self.pacer = pacer or ChatPacer()
        # For GroupGateMiddleware's question, asked before any session is open.
        self.pool = pool
        self.clock = clock
        self._listening: dict[int, tuple[bool, float]] = {}

    async def listens(self, chat_id: int) -> bool:
        """Whether the group keeps what it hears; asked for every group message that is not
        addressed to the bot, so read from the database at most every 30 s per group."""
        now = self.clock()
        known = self._listening.get(chat_id)
        if known is not None and known[1] > now:
            return known[0]
        if self.pool is None:
            return False
        async with self.pool() as session:
            listen = await GroupRepository(session).listens(chat_id)
        if len(self._listening) > 10_000:  # a bot in very many groups: start afresh
            self._listening.clear()
        self._listening[chat_id] = (listen, now + LISTEN_CACHE_SECONDS)
        return listen

    async def hear(
        self, session: AsyncSession, chat_id: int, thread_id: int | None, name: str, text: str
    ) -> None:
        """Keep a message not addressed to the bot, for its next answer there."""
        await GroupRepository(session).hear(
            chat_id,
            thread_id,
            name[:256],
            text[:HEARD_MESSAGE_CHARS],
            keep=self.access.group_listen_messages,
        )
        await session.commit()

    async def heard(self, session: AsyncSession, chat_id: int, thread_id: int | None) -> str:
        """What the group said since the bot's last answer there, as a preface to the new
        question (empty when nothing was heard); taken, so it is used once."""
        taken = await GroupRepository(session).take_heard(chat_id, thread_id)
        if not taken:
            return ""
        await session.commit()
        lines: list[str] = []
        size = 0
        for name, text in reversed(taken):
            line = f"{name}: {text}"
            size += len(line) + 1
            if size > HEARD_TOTAL_CHARS:
                break
            lines.append(line)
        lines.reverse()
        return (
            "[Said in the group since your last answer, not to you:]\n"
            + "\n".join(lines)
            + "\n[Now to you:]\n"
        )

    async def set_listen(self, session: AsyncSession, chat_id: int, *, listen: bool) -> bool:
        """Listening on or off; off deletes what was heard. False when the group is gone."""
        repository = GroupRepository(session)
        group = await repository.get(chat_id)
        if group is None:
            return False
        group.listen = listen
        if not listen:
            await repository.forget_heard(chat_id, all_threads=True)
        await session.commit()
        self._listening[chat_id] = (listen, self.clock() + LISTEN_CACHE_SECONDS)
        return True

    async def set_language(self, session: AsyncSession, chat_id: int, language: str | None) -> bool:
        """The language of the bot's notes in the group; None: each member's own."""
        group = await GroupRepository(session).get(chat_id)
        if group is None:
            return False
        group.language = language
        await session.commit()
        return True

    async def set_answer_length(
        self, session: AsyncSession, chat_id: int, length: AnswerLength
    ) -> bool:
        group = await GroupRepository(session).get(chat_id)
        if group is None:
            return False
        group.answer_length = None if length is AnswerLength.NORMAL else length
        await session.commit()
        return True

    async def say(self, bot: Bot, chat_id: int, text: str, *, reply_to: int | None = None) -> None:
        """A note to a group: not essential (the bot may lack the right to write there)."""
        await self.pacer.final_slot(chat_id)
        reply = (
            ReplyParameters(message_id=reply_to, allow_sending_without_reply=True)
            if reply_to is not None
            else None
        )
        try:
            await bot.send_message(chat_id, text, reply_parameters=reply)
        except TelegramAPIError as exc:
            log.info("Could not write to group %s: %s", chat_id, exc)

    async def get(self, session: AsyncSession, chat_id: int) -> GroupView | None:
        group = await GroupRepository(session).get(chat_id)
        return None if group is None else self._view(group)

    async def listed(self, session: AsyncSession, limit: int = 30) -> list[GroupView]:
        """What /groups shows: the groups the bot knows, newest first."""
        return [self._view(group) for group in await GroupRepository(session).newest(limit)]

    async def set_allowed(
        self, session: AsyncSession, chat_id: int, *, allowed: bool
    ) -> GroupView | None:
        """An admin allows or blocks a group in /groups; None when the bot is not there (it
        was removed: only adding it back brings it there)."""
        group = await GroupRepository(session).get(chat_id)
        if group is None or group.status is GroupStatus.LEFT:
            return None
        group.status = GroupStatus.ALLOWED if allowed else GroupStatus.BLOCKED
        await session.commit()
        return self._view(group)

    async def set_persona(self, session: AsyncSession, chat_id: int, persona_id: int) -> bool:
        """The persona the group talks to from now on (its conversation with it: each
        persona keeps its own); False when the group or the persona is gone."""
        group = await GroupRepository(session).get(chat_id)
        if group is None or await PersonaRepository(session).get(persona_id) is None:
            return False
        group.persona_id = persona_id
        await session.commit()
        return True

    async def set_members(
        self, session: AsyncSession, chat_id: int, members: GroupMembers | None
    ) -> GroupView | None:
        """Who may talk to the bot in the group: every member or only users with access;
        None puts it back on the owner's GROUP_MEMBERS. None when the bot is not there."""
        group = await self._present(session, chat_id)
        if group is None:
            return None
        group.members = members
        await session.commit()
        return self._view(group)

    async def set_budget(
        self,
        session: AsyncSession,
        chat_id: int,
        unit: BudgetUnit | None,
        daily: float | None = None,
        monthly: float | None = None,
    ) -> GroupView | None:
        """Give the group limits of its own in `unit` (a None limit: none for that period),
        or with `unit=None` none of its own; its members' own limits apply either way.
        Limits must be positive (InvalidBudget). None when the bot is not there."""
        if unit is None and (daily is not None or monthly is not None):
            raise InvalidBudget("Limits need a unit, tokens or money.")
        for limit in (daily, monthly):
            if limit is not None and not (math.isfinite(limit) and limit > 0):
                raise InvalidBudget(f"A limit must be a positive number, not {limit}.")
        group = await self._present(session, chat_id)
        if group is None:
            return None
        group.budget_unit, group.budget_daily, group.budget_monthly = unit, daily, monthly
        await session.commit()
        return self._view(group)

    async def _present(self, session: AsyncSession, chat_id: int) -> Group | None:
        """The group, unless the bot is not there (unknown, or removed from it)."""
        group = await GroupRepository(session).get(chat_id)
        return None if group is None or group.status is GroupStatus.LEFT else group

    def _view(self, group: Group) -> GroupView:
        return GroupView(
            group.chat_id,
            group.title,
            group.status,
            group.members or self.access.group_members,
            group.persona_id,
            group.added_by,
            group.language,
            group.answer_length or AnswerLength.NORMAL,
            group.listen,
            None
            if group.budget_unit is None
            else Limits(group.budget_unit, group.budget_daily, group.budget_monthly),
            group.members is not None,
        )

    async def joined(
        self, session: AsyncSession, chat_id: int, title: str, by: UserContext | None
    ) -> GroupStatus:
        """The bot was added to a group by `by`: allowed when a bot admin did it; a group an
        admin blocked stays blocked; otherwise it waits for an admin."""
        groups = GroupRepository(session)
        known = await groups.get(chat_id)
        if by is not None and Right.ADMIN in by.rights:
            status = GroupStatus.ALLOWED
        elif known is not None and known.status is GroupStatus.BLOCKED:
            status = GroupStatus.BLOCKED
        else:
            status = GroupStatus.PENDING
        await groups.put(
            chat_id, title=title, status=status, added_by=by.id if by is not None else None
        )
        await session.commit()
        return status

    async def left(self, session: AsyncSession, chat_id: int) -> None:
        """The bot was removed (or the group deleted): nothing more happens there."""
        repository = GroupRepository(session)
        group = await repository.get(chat_id)
        if group is not None:
            # What it heard goes with it: no one can ask about it any more.
            await repository.forget_heard(chat_id, all_threads=True)
            if group.status is not GroupStatus.BLOCKED:
                group.status = GroupStatus.LEFT
            await session.commit()
        self._listening.pop(chat_id, None)

    async def tell(
        self,
        bot: Bot,
        chat_id: int,
        user_id: int,
        text: str,
        *,
        reply_to: int,
        thread_id: int | None,
    ) -> None:
        """A note for one member only (a refusal, their budget): app/delivery/ephemeral.py."""
        await self.pacer.final_slot(chat_id)
        await tell_one(bot, chat_id, user_id, text, reply_to=reply_to, thread_id=thread_id)

    async def forget(
        self,
        session: AsyncSession,
        chat_id: int,
        thread_id: int | None,
        persona_id: int,
        *,
        by: int,
    ) -> bool:
        """Delete the group's (or topic's) conversation for good; an empty one (on `by`'s
        account) takes its place. False when there was none."""
        messages = MessageRepository(session)
        heard = GroupRepository(session)
        await heard.forget_heard(chat_id, thread_id)
        row = await messages.current_in_chat(chat_id, thread_id, persona_id)
        if row is None or await messages.count(row[0]) == 0:
            await session.commit()
            return False
        # The new one first, as MemoryService.forget does: SQLite, which gives the highest
        # id again once it is deleted, then never hands the forgotten id to the next one.
        await messages.start_conversation(by, persona_id, chat_id=chat_id, thread_id=thread_id)
        deleted = await messages.delete_chat_conversation(chat_id, row[0])
        await session.commit()
        return deleted

    async def decide(
        self, session: AsyncSession, chat_id: int, *, approve: bool
    ) -> GroupView | None:
        """An admin's Approve or Deny; None when the group is gone or no longer waits (the
        other admin decided, or the bot left)."""
        group = await GroupRepository(session).get(chat_id)
        if group is None or group.status is not GroupStatus.PENDING:
            return None
        group.status = GroupStatus.ALLOWED if approve else GroupStatus.BLOCKED
        await session.commit()
        return await self.get(session, chat_id)
