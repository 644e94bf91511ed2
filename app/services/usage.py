"""What users spend on the model, priced from the owner's table, and their budgets.

Days are UTC days and months calendar months in UTC, for everyone: one boundary that the
database rows (one per user, day and model) and the reset times agree on.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, date, datetime, time, timedelta

from sqlalchemy.ext.asyncio import AsyncSession

from app.config import BudgetSettings
from app.db.usage import Spending, UsageRepository
from app.domain.clock import utcnow
from app.domain.enums import BudgetUnit, Role
from app.domain.usage import (
    LimitReached,
    Limits,
    Period,
    PeriodUsage,
    UsageReport,
    UsageTotals,
)
from app.domain.users import UserContext
from app.llm.chat import TokenUsage

# Money sums are floats: a spend equal to the limit must not pass as a hair below it.
MONEY_EPSILON = 1e-9


class BudgetRefused(Exception):
    """A message refused before it reaches the model or the history: the user has reached a
    limit. The handler layer tells them which, and when it resets."""

    def __init__(self, reached: LimitReached, currency: str, *, group: bool = False) -> None:
        super().__init__(f"{reached.period} limit reached")
        self.reached = reached
        self.currency = currency
        # The group's own limit, not the asker's.
        self.group = group


def month_start(day: date) -> date:
    return day.replace(day=1)


def next_day(now: datetime) -> datetime:
    """The next 00:00 UTC after `now`: when a daily limit resets."""
    return datetime.combine(now.astimezone(UTC).date() + timedelta(days=1), time(), UTC)


def next_month(now: datetime) -> datetime:
    """00:00 UTC on the 1st of the next month: when a monthly limit resets."""
    today = now.astimezone(UTC).date()
    year, month = (today.year + 1, 1) if today.month == 12 else (today.year, today.month + 1)
    return datetime(year, month, 1, tzinfo=UTC)


def resets_at(period: Period, now: datetime) -> datetime:
    return next_day(now) if period is Period.DAY else next_month(now)


def limits_for(
    defaults: BudgetSettings,
    *,
    is_admin: bool,
    unit: BudgetUnit | None,
    daily: float | None,
    monthly: float | None,
) -> Limits | None:
    """The user's own limits when they have a unit, else the owner's defaults; None for
    admins, who are never limited."""
    if is_admin:
        return None
    if unit is not None:
        return Limits(unit, daily, monthly)
    return Limits(defaults.unit, defaults.daily, defaults.monthly)


def limit_reached(
    limits: Limits | None, day_spent: float, month_spent: float, now: datetime
) -> LimitReached | None:
    """The limit a user has reached, if any: spent >= limit is refused. When both are
    reached, the monthly one, whose reset comes last and is the one to wait for."""
    if limits is None:
        return None
    margin = MONEY_EPSILON if limits.unit is BudgetUnit.MONEY else 0.0
    for period, spent in ((Period.MONTH, month_spent), (Period.DAY, day_spent)):
        limit = limits.of(period)
        if limit is not None and spent >= limit - margin:
            return LimitReached(period, limits.unit, spent, limit, resets_at(period, now), now)
    return None


def _reached(limits: Limits, spending: Spending, now: datetime) -> LimitReached | None:
    if limits.daily is None and limits.monthly is None:
        return None
    if limits.unit is BudgetUnit.MONEY:
        return limit_reached(limits, spending.day_cost, spending.month_cost, now)
    return limit_reached(limits, spending.day_tokens, spending.month_tokens, now)


class UsageService:
    """Records what requests cost and checks budgets before a message goes to the model."""

    def __init__(self, settings: BudgetSettings, *, clock: Callable[[], datetime] = utcnow) -> None:
        self.settings = settings
        self.clock = clock

    @property
    def currency(self) -> str:
        return self.settings.currency

    def cost(
        self,
        model: str,
        prompt_tokens: int,
        completion_tokens: int,
        seconds: float = 0.0,
        images: int = 0,
    ) -> float:
        return self.settings.cost(model, prompt_tokens, completion_tokens, seconds, images)

    async def record(
        self,
        session: AsyncSession,
        *,
        user_id: int,
        model: str,
        usage: TokenUsage,
        seconds: float = 0.0,
        images: int = 0,
        group_id: int | None = None,
    ) -> None:
        """Add one request to today's row, priced now, in the caller's transaction: the
        chat answer's usage is written with the answer itself, in the same commit. Asked in
        a group (`group_id`), it counts for the group as well as for the asker. `seconds`
        of audio and `images` made are priced by the model's per-unit prices."""
        repository = UsageRepository(session)
        day = self.clock().astimezone(UTC).date()
        cost = self.cost(model, usage.prompt_tokens, usage.completion_tokens, seconds, images)
        await repository.add(
            user_id=user_id,
            day=day,
            model=model,
            prompt_tokens=usage.prompt_tokens,
            completion_tokens=usage.completion_tokens,
            cost=cost,
        )
        if group_id is not None:
            await repository.add_group(
                chat_id=group_id,
                day=day,
                model=model,
                prompt_tokens=usage.prompt_tokens,
                completion_tokens=usage.completion_tokens,
                cost=cost,
            )

    async def refuse_group_over_limit(self, session: AsyncSession, chat_id: int) -> None:
        """Raises BudgetRefused (`group`) when the group has reached a limit of its own."""
        now = self.clock()
        today = now.astimezone(UTC).date()
        spending = await UsageRepository(session).group_spending(
            chat_id, today=today, month_start=month_start(today)
        )
        if spending is None or spending.unit is None:
            return
        reached = _reached(Limits(spending.unit, spending.daily, spending.monthly), spending, now)
        if reached is not None:
            raise BudgetRefused(reached, self.currency, group=True)

    async def group_usage(self, session: AsyncSession, chat_id: int) -> tuple[UsageTotals, ...]:
        """What a group spent today and this month (UTC), for /groups."""
        today = self.clock().astimezone(UTC).date()
        repository = UsageRepository(session)
        return (
            await repository.group_totals(chat_id, since=today),
            await repository.group_totals(chat_id, since=month_start(today)),
        )

    async def refuse_over_limit(self, session: AsyncSession, user_id: int) -> None:
        """Raises BudgetRefused when the user has reached a limit: what every kind of
        message (text, voice, a document) checks before it costs anything."""
        reached = await self.check(session, user_id)
        if reached is not None:
            raise BudgetRefused(reached, self.currency)

    async def check(self, session: AsyncSession, user_id: int) -> LimitReached | None:
        """The limit the user has reached, or None when they may send a message: one
        query for their limits and their spending."""
        now = self.clock()
        today = now.astimezone(UTC).date()
        spending = await UsageRepository(session).spending(
            user_id, today=today, month_start=month_start(today)
        )
        if spending is None:
            return None
        limits = self._limits_of_spending(spending)
        if limits is None:
            return None
        return _reached(limits, spending, now)

    def limits(self, user: UserContext) -> Limits | None:
        return limits_for(
            self.settings,
            is_admin=user.is_admin,
            unit=user.budget_unit,
            daily=user.budget_daily,
            monthly=user.budget_monthly,
        )

    def _limits_of_spending(self, spending: Spending) -> Limits | None:
        return limits_for(
            self.settings,
            is_admin=spending.role is Role.ADMIN,
            unit=spending.unit,
            daily=spending.daily,
            monthly=spending.monthly,
        )

    async def report(self, session: AsyncSession, user: UserContext) -> UsageReport:
        """Today's and this month's usage of the user, per model, with their budget."""
        now = self.clock()
        today = now.astimezone(UTC).date()
        repository = UsageRepository(session)
        month_models = await repository.by_model(user.id, since=month_start(today))
        day_models = await repository.by_model(user.id, since=today)
        limits = self.limits(user)
        periods = []
        for period, models in ((Period.DAY, day_models), (Period.MONTH, month_models)):
            totals = sum((t for _, t in models), UsageTotals())
            periods.append(
                PeriodUsage(
                    period,
                    totals,
                    models,
                    limits.of(period) if limits else None,
                    resets_at(period, now),
                )
            )
        return UsageReport(
            today=periods[0],
            month=periods[1],
            limits=limits,
            exempt=user.is_admin,
            show_cost=bool(
                self.settings.prices or self.settings.minute_prices or self.settings.image_prices
            )
            or (limits is not None and limits.unit is BudgetUnit.MONEY),
            currency=self.settings.currency,
            now=now,
        )
