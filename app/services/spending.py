"""What a built-in plugin spends for a user (a picture made, say): the budget check before
and the usage row after, each in a session of its own, so that a plugin needs neither the
handler's session nor our repositories (it is handed this as `services["spending"]`)."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.db.engine import WriteGate
from app.domain.usage import LimitReached
from app.llm.chat import TokenUsage
from app.services.usage import UsageService


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

    async def record(
        self,
        user_id: int,
        model: str,
        *,
        prompt_tokens: int = 0,
        completion_tokens: int = 0,
        images: int = 0,
    ) -> None:
        """One request of the model for the user, priced now (tokens and pictures), committed
        at once: a picture is paid for whether or not what follows succeeds."""
        async with self.pool() as session, self.gate.section(session):
            await self.usage.record(
                session,
                user_id=user_id,
                model=model,
                usage=TokenUsage(prompt_tokens, completion_tokens),
                images=images,
            )
            await session.commit()
