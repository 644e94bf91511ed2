"""Repository of token usage: one row per user, UTC day and model, added to as requests go.

The two statements on the answer path (the budget check before every message, the upsert
after it) are built once, with bound parameters, and only executed per message: building
them per call cost more than running them (about 1 ms of Python each, bench/load.py).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import Any

from sqlalchemy import BigInteger, Date, bindparam, case, func, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession

from app.db.models import Group, GroupUsage, Usage, User
from app.domain.enums import BudgetUnit, Role
from app.domain.usage import UsageTotals


@dataclass(frozen=True, slots=True)
class Spending:
    """A user's budget settings and what they spent today and this month: the budget check's
    one look-up."""

    role: Role
    unit: BudgetUnit | None
    daily: float | None
    monthly: float | None
    day_tokens: int
    day_cost: float
    month_tokens: int
    month_cost: float


def _sums(table: type[Usage] | type[GroupUsage] = Usage) -> tuple[Any, ...]:
    return (
        func.coalesce(func.sum(table.requests), 0),
        func.coalesce(func.sum(table.prompt_tokens), 0),
        func.coalesce(func.sum(table.completion_tokens), 0),
        func.coalesce(func.sum(table.cost), 0.0),
    )


def _spending(role: Role, unit: Any, daily: Any, monthly: Any, *sums: Any) -> Spending:
    """The budget check's row as a Spending (PostgreSQL sums come as Decimals)."""
    day_tokens, day_cost, month_tokens, month_cost = sums
    return Spending(
        role=role,
        unit=unit,
        daily=daily,
        monthly=monthly,
        day_tokens=int(day_tokens),
        day_cost=float(day_cost),
        month_tokens=int(month_tokens),
        month_cost=float(month_cost),
    )


def _totals(requests: Any, prompt: Any, completion: Any, cost: Any) -> UsageTotals:
    # PostgreSQL sums integers as numeric: asyncpg hands back Decimals.
    return UsageTotals(int(requests), int(prompt), int(completion), float(cost))


def _upsert(insert: Any, table: Any, owner: str) -> Any:
    """Insert the day's row for the model, or add to it when it exists: one statement, no
    read first, and safe against a concurrent writer of the same row."""
    statement = insert(table)
    new = statement.excluded
    return statement.on_conflict_do_update(
        index_elements=[table.c[owner], table.c.day, table.c.model],
        set_={
            "requests": table.c.requests + new.requests,
            "prompt_tokens": table.c.prompt_tokens + new.prompt_tokens,
            "completion_tokens": table.c.completion_tokens + new.completion_tokens,
            "cost": table.c.cost + new.cost,
        },
    )


_DIALECTS = {"postgresql": postgresql.insert, "sqlite": sqlite.insert}
_UPSERT = {name: _upsert(insert, Usage.__table__, "user_id") for name, insert in _DIALECTS.items()}
_GROUP_UPSERT = {
    name: _upsert(insert, GroupUsage.__table__, "chat_id") for name, insert in _DIALECTS.items()
}

_TOKENS = Usage.prompt_tokens + Usage.completion_tokens
_IS_TODAY = Usage.day == bindparam("today", type_=Date)
# The user's row by key and their usage rows of the month, a range of the primary key.
_SPENDING = (
    select(
        User.role,
        User.budget_unit,
        User.budget_daily,
        User.budget_monthly,
        func.coalesce(func.sum(case((_IS_TODAY, _TOKENS), else_=0)), 0),
        func.coalesce(func.sum(case((_IS_TODAY, Usage.cost), else_=0.0)), 0.0),
        func.coalesce(func.sum(_TOKENS), 0),
        func.coalesce(func.sum(Usage.cost), 0.0),
    )
    .select_from(User)
    .outerjoin(
        Usage,
        (Usage.user_id == User.id) & (Usage.day >= bindparam("month_start", type_=Date)),
    )
    .where(User.id == bindparam("user_id", type_=BigInteger))
    .group_by(User.id)
)


_GROUP_TOKENS = GroupUsage.prompt_tokens + GroupUsage.completion_tokens
_GROUP_TODAY = GroupUsage.day == bindparam("today", type_=Date)
# The group's limits and its usage rows of the month, as _SPENDING for a user.
_GROUP_SPENDING = (
    select(
        Group.budget_unit,
        Group.budget_daily,
        Group.budget_monthly,
        func.coalesce(func.sum(case((_GROUP_TODAY, _GROUP_TOKENS), else_=0)), 0),
        func.coalesce(func.sum(case((_GROUP_TODAY, GroupUsage.cost), else_=0.0)), 0.0),
        func.coalesce(func.sum(_GROUP_TOKENS), 0),
        func.coalesce(func.sum(GroupUsage.cost), 0.0),
    )
    .select_from(Group)
    .outerjoin(
        GroupUsage,
        (GroupUsage.chat_id == Group.chat_id)
        & (GroupUsage.day >= bindparam("month_start", type_=Date)),
    )
    .where(Group.chat_id == bindparam("chat_id", type_=BigInteger))
    .group_by(Group.chat_id)
)


class UsageRepository:
    """Adds to and sums the usage table; the caller owns the transaction."""

    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def add(
        self,
        *,
        user_id: int,
        day: date,
        model: str,
        prompt_tokens: int,
        completion_tokens: int,
        cost: float,
        requests: int = 1,
    ) -> None:
        """Add to the day's row for the model, creating it."""
        await self._add(
            _UPSERT,
            {"user_id": user_id, "requests": requests},
            day,
            model,
            prompt_tokens,
            completion_tokens,
            cost,
        )

    async def add_group(
        self,
        *,
        chat_id: int,
        day: date,
        model: str,
        prompt_tokens: int,
        completion_tokens: int,
        cost: float,
    ) -> None:
        """Add to the group's row of the day for the model, creating it."""
        await self._add(
            _GROUP_UPSERT,
            {"chat_id": chat_id, "requests": 1},
            day,
            model,
            prompt_tokens,
            completion_tokens,
            cost,
        )

    async def _add(
        self,
        upserts: dict[str, Any],
        owner: dict[str, Any],
        day: date,
        model: str,
        prompt_tokens: int,
        completion_tokens: int,
        cost: float,
    ) -> None:
        values = {
            **owner,
            "day": day,
            "model": model,
            "prompt_tokens": prompt_tokens,
            "completion_tokens": completion_tokens,
            "cost": cost,
        }
        await self.session.execute(upserts[self.session.get_bind().dialect.name], values)

    async def group_spending(
        self, chat_id: int, *, today: date, month_start: date
    ) -> Spending | None:
        """The group's limits with its spending today and since `month_start` (its role is
        a user's: limits apply to it), or None for a group the bot does not know."""
        row = (
            await self.session.execute(
                _GROUP_SPENDING, {"chat_id": chat_id, "today": today, "month_start": month_start}
            )
        ).first()
        return None if row is None else _spending(Role.USER, *row)

    async def group_totals(self, chat_id: int, *, since: date) -> UsageTotals:
        """A group's usage from `since` (inclusive) on."""
        row = (
            await self.session.execute(
                select(*_sums(GroupUsage)).where(
                    GroupUsage.chat_id == chat_id, GroupUsage.day >= since
                )
            )
        ).one()
        return _totals(*row)

    async def spending(self, user_id: int, *, today: date, month_start: date) -> Spending | None:
        """The user's limits with their spending today and since `month_start`, in one
        query."""
        row = (
            await self.session.execute(
                _SPENDING, {"user_id": user_id, "today": today, "month_start": month_start}
            )
        ).first()
        return None if row is None else _spending(*row)

    async def totals(self, user_id: int, *, since: date) -> UsageTotals:
        """A user's usage from `since` (inclusive) on."""
        row = (
            await self.session.execute(
                select(*_sums()).where(Usage.user_id == user_id, Usage.day >= since)
            )
        ).one()
        return _totals(*row)

    async def by_model(self, user_id: int, *, since: date) -> list[tuple[str, UsageTotals]]:
        """A user's usage from `since` on, per model, the most used first."""
        rows = (
            await self.session.execute(
                select(Usage.model, *_sums())
                .where(Usage.user_id == user_id, Usage.day >= since)
                .group_by(Usage.model)
            )
        ).all()
        result = [(str(row[0]), _totals(*row[1:])) for row in rows]
        result.sort(key=lambda item: (-item[1].tokens, item[0]))
        return result
