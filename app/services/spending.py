"""What a built-in plugin spends for a user (a picture made, say): the budget check before
and the usage row after, each in a session of its own, so that a plugin needs neither the
handler's session nor our repositories (it is handed this as `services["spending"]`)."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.db.engine import WriteGate
from app.db.users import UserRepository
from app.domain.enums import Role
from app.domain.usage import LimitReached
from app.llm.chat import TokenUsage
from app.services.usage import BudgetRefused, UsageService


class PluginSpending:
    """Budgets and usage rows for what plugins buy on a user's behalf."""

    def __init__(
        self, pool: async_sessionmaker[AsyncSession], usage: UsageService, gate: WriteGate
    ) -> None:
        self.pool, self.usage, self.gate = pool, usage, gate

    @property
    def currency(self) -> str:
        return self.usage.currency

    async def over_limit(self, user_id: int) -> LimitReached | None:
        """The limit the user has reached (then nothing should be bought), or None."""
        async with self.pool() as session:
            return await self.usage.check(session, user_id)

    async def group_over_limit(self, chat_id: int, user_id: int) -> LimitReached | None:
        """The limit of its own the group `chat_id` has reached (what is bought in a group
        counts for it too, as its members' answers do), or None; never for the bot's
        admins, as in the group's chat."""
        async with self.pool() as session:
            user = await UserRepository(session).get(user_id)
            if user is not None and user.role is Role.ADMIN:
                return None
            try:
                await self.usage.refuse_group_over_limit(session, chat_id)
            except BudgetRefused as refused:
                return refused.reached
        return None

    async def record(
        self,
        user_id: int,
        model: str,
        *,
        prompt_tokens: int = 0,
        completion_tokens: int = 0,
        images: int = 0,
        group_id: int | None = None,
    ) -> None:
        """One request of the model for the user, priced now (tokens and pictures), committed
        at once: a picture is paid for whether or not what follows succeeds. Made in a group
        (`group_id`), it counts for the group as well."""
        async with self.pool() as session, self.gate.section(session):
            await self.usage.record(
                session,
                user_id=user_id,
                model=model,
                usage=TokenUsage(prompt_tokens, completion_tokens),
                images=images,
                group_id=group_id,
            )
            await session.commit()
