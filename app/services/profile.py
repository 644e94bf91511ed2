"""What a user sees and changes of their profile: the facts the assistant keeps about them
(/memory), forgetting everything (/forget), and turning it on or off (/settings). Only ever
the user's own: every call takes the id of the user asking."""

from __future__ import annotations

import enum
from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncSession

from app.db.messages import MessageRepository
from app.db.profile import ProfileRepository
from app.domain.memory import ProfileEntry
from app.memory.profile import ProfileBook, ProfileWriter, clean_fact


class Added(enum.StrEnum):
    """What became of a fact the user typed."""

    ADDED = "added"
    EMPTY = "empty"
    KNOWN = "known"
    FULL = "full"


@dataclass(frozen=True, slots=True)
class Everything:
    """What "forget everything you know about me" deletes."""

    facts: int
    conversations: int


class ProfileService:
    """A user's own profile, read and edited by them."""

    def __init__(
        self, book: ProfileBook, writer: ProfileWriter | None = None, *, default: bool = True
    ) -> None:
        self.book = book
        self.writer = writer
        self.default = default  # MEMORY_PROFILE, for users who never chose

    async def entries(self, session: AsyncSession, user_id: int) -> list[ProfileEntry]:
        rows = await ProfileRepository(session).facts(user_id)
        return [ProfileEntry(fact_id, text) for fact_id, text, _ in rows]

    async def add(self, session: AsyncSession, user_id: int, text: str) -> Added:
        """A fact the user typed, within the profile's limits."""
        fact = clean_fact(text)
        if not fact:
            return Added.EMPTY
        profiles = ProfileRepository(session)
        facts = [row[1] for row in await profiles.facts(user_id)]
        if fact.casefold() in {known.casefold() for known in facts}:
            return Added.KNOWN
        if not self.book.fits([*facts, fact]):
            return Added.FULL
        await profiles.add(user_id, fact, self.book.fact_tokens(fact))
        return Added.ADDED

    async def remove(self, session: AsyncSession, user_id: int, fact_id: int) -> bool:
        """False when it is gone already, or not the user's (a stale or forged button)."""
        return await ProfileRepository(session).remove(user_id, [fact_id]) > 0

    async def set_enabled(self, session: AsyncSession, user_id: int, enabled: bool) -> None:
        """On or off; off deletes the profile, and messages sent while it was off are never
        read."""
        profiles = ProfileRepository(session)
        setting = await profiles.setting(user_id)
        was_on = setting is not None and (self.default if setting[0] is None else setting[0])
        await profiles.set_enabled(user_id, enabled)
        if enabled and not was_on:
            await profiles.skip_to_newest(user_id)
        elif not enabled:
            await profiles.clear(user_id)
            if self.writer is not None:
                self.writer.forget(user_id)

    async def everything(self, session: AsyncSession, user_id: int) -> Everything:
        profiles = ProfileRepository(session)
        facts = await profiles.facts(user_id)
        conversations = await profiles.private_conversations(user_id)
        return Everything(len(facts), len(conversations))

    async def forget_everything(
        self, session: AsyncSession, user_id: int, persona_id: int
    ) -> Everything:
        """Delete the profile and every private conversation of the user (with every
        persona, in every topic); a new empty one with `persona_id` becomes current.
        Conversations of groups are the groups', and stay."""
        profiles = ProfileRepository(session)
        conversations = await profiles.private_conversations(user_id)
        # The new conversation first, as /forget does: SQLite then never gives a forgotten
        # id again, so a late summary of a deleted conversation cannot reach a new one.
        await MessageRepository(session).start_conversation(user_id, persona_id)
        await profiles.delete_conversations(conversations)
        facts = await profiles.clear(user_id)
        if self.writer is not None:
            self.writer.forget(user_id)
        return Everything(facts, len(conversations))
