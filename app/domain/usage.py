"""What requests cost and the limits on it: sums as the database adds them up, budgets, and
reports as the screens show them."""

from __future__ import annotations

import enum
from dataclasses import dataclass
from datetime import datetime

from app.domain.enums import BudgetUnit


@dataclass(frozen=True, slots=True)
class UsageTotals:
    """Sums over some usage rows."""

    requests: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cost: float = 0.0

    @property
    def tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens

    def __add__(self, other: UsageTotals) -> UsageTotals:
        return UsageTotals(
            self.requests + other.requests,
            self.prompt_tokens + other.prompt_tokens,
            self.completion_tokens + other.completion_tokens,
            self.cost + other.cost,
        )


class Period(enum.StrEnum):
    """What a limit covers."""

    DAY = "day"
    MONTH = "month"


@dataclass(frozen=True, slots=True)
class Limits:
    """The budget that applies to a user; a None limit means none for that period."""

    unit: BudgetUnit
    daily: float | None
    monthly: float | None

    def of(self, period: Period) -> float | None:
        return self.daily if period is Period.DAY else self.monthly


@dataclass(frozen=True, slots=True)
class LimitReached:
    """Why a message is refused: the limit reached, what was spent, and when it resets."""

    period: Period
    unit: BudgetUnit
    spent: float
    limit: float
    resets_at: datetime
    now: datetime


@dataclass(frozen=True, slots=True)
class PeriodUsage:
    """A user's usage in one period, with the limit that applies (None: no limit)."""

    period: Period
    totals: UsageTotals
    by_model: list[tuple[str, UsageTotals]]
    limit: float | None
    resets_at: datetime

    def spent(self, unit: BudgetUnit) -> float:
        return self.totals.cost if unit is BudgetUnit.MONEY else self.totals.tokens

    def remaining(self, unit: BudgetUnit) -> float | None:
        return None if self.limit is None else max(self.limit - self.spent(unit), 0.0)


@dataclass(frozen=True, slots=True)
class UsageReport:
    """What /usage shows: today and this month, and the budget (None for admins)."""

    today: PeriodUsage
    month: PeriodUsage
    limits: Limits | None
    exempt: bool  # an admin: never limited
    show_cost: bool  # prices are configured, or the budget is in money
    currency: str
    now: datetime
