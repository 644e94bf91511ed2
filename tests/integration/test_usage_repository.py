"""The usage tables (users' and groups') on a real database: the upserts and the sums, on
SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
from datetime import date

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.db.models import Group, GroupUsage, Usage, User
from app.db.usage import Spending, UsageRepository
from app.domain.enums import BudgetUnit, GroupStatus, Role
from app.domain.usage import UsageTotals

MAY_1 = date(2030, 5, 1)
MAY_14 = date(2030, 5, 14)
MAY_15 = date(2030, 5, 15)
APRIL_30 = date(2030, 4, 30)


async def add_users(pool: async_sessionmaker[AsyncSession], *ids: int) -> None:
    async with pool() as session, session.begin():
        session.add_all(User(id=user_id, first_name=str(user_id)) for user_id in ids)


async def add(
    pool: async_sessionmaker[AsyncSession],
    user_id: int,
    day: date,
    model: str,
    prompt: int,
    completion: int,
    cost: float = 0.0,
) -> None:
    async with pool() as session, session.begin():
        await UsageRepository(session).add(
            user_id=user_id,
            day=day,
            model=model,
            prompt_tokens=prompt,
            completion_tokens=completion,
            cost=cost,
        )


async def test_requests_on_one_day_and_model_add_up_in_one_row(
    pool: async_sessionmaker[AsyncSession],
) -> None:
    await add_users(pool, 1)
    await add(pool, 1, MAY_15, "m", 100, 10, 0.25)
    await add(pool, 1, MAY_15, "m", 200, 20, 0.5)
    await add(pool, 1, MAY_15, "other", 1, 2)
    await add(pool, 1, MAY_14, "m", 5, 5)
    async with pool() as session:
        rows = (
            await session.execute(
                select(
                    Usage.day,
                    Usage.model,
                    Usage.requests,
                    Usage.prompt_tokens,
                    Usage.completion_tokens,
                    Usage.cost,
                ).order_by(Usage.day, Usage.model)
            )
        ).all()
    assert [tuple(row) for row in rows] == [
        (MAY_14, "m", 1, 5, 5, 0.0),
        (MAY_15, "m", 2, 300, 30, 0.75),
        (MAY_15, "other", 1, 1, 2, 0.0),
    ]


async def test_concurrent_writers_of_the_same_row_lose_nothing(
    pool: async_sessionmaker[AsyncSession],
) -> None:
    await add_users(pool, 1)
    await asyncio.gather(*(add(pool, 1, MAY_15, "m", 10, 1) for _ in range(8)))
    async with pool() as session:
        totals = await UsageRepository(session).totals(1, since=MAY_15)
    assert totals == UsageTotals(requests=8, prompt_tokens=80, completion_tokens=8, cost=0.0)


async def test_sums_per_model_per_user_and_since_a_day(
    pool: async_sessionmaker[AsyncSession],
) -> None:
    await add_users(pool, 1, 2)
    await add(pool, 1, APRIL_30, "m", 1000, 1000, 9.0)  # last month
    await add(pool, 1, MAY_1, "m", 100, 10, 1.0)
    await add(pool, 1, MAY_15, "m", 50, 5, 0.5)
    await add(pool, 1, MAY_15, "big", 500, 50, 2.0)
    await add(pool, 2, MAY_15, "m", 7, 3, 0.25)
    async with pool() as session:
        usage = UsageRepository(session)
        assert await usage.totals(1, since=MAY_1) == UsageTotals(3, 650, 65, 3.5)
        assert await usage.totals(3, since=MAY_1) == UsageTotals()
        assert await usage.by_model(1, since=MAY_15) == [
            ("big", UsageTotals(1, 500, 50, 2.0)),
            ("m", UsageTotals(1, 50, 5, 0.5)),
        ]


async def test_the_budget_look_up_brings_the_limits_and_todays_and_this_months_spending(
    pool: async_sessionmaker[AsyncSession],
) -> None:
    await add_users(pool, 1, 2)
    async with pool() as session, session.begin():
        user = await session.get(User, 1)
        assert user is not None
        user.budget_unit, user.budget_daily, user.budget_monthly = BudgetUnit.MONEY, 1.5, None
    await add(pool, 1, APRIL_30, "m", 1000, 1000, 9.0)
    await add(pool, 1, MAY_1, "m", 100, 10, 1.0)
    await add(pool, 1, MAY_15, "m", 50, 5, 0.5)
    await add(pool, 1, MAY_15, "big", 500, 50, 2.0)
    async with pool() as session:
        usage = UsageRepository(session)
        spent = await usage.spending(1, today=MAY_15, month_start=MAY_1)
        nothing = await usage.spending(2, today=MAY_15, month_start=MAY_1)
        unknown = await usage.spending(3, today=MAY_15, month_start=MAY_1)
    assert spent == Spending(Role.USER, BudgetUnit.MONEY, 1.5, None, 605, 2.5, 715, 3.5)
    assert nothing == Spending(Role.USER, None, None, None, 0, 0.0, 0, 0.0)
    assert unknown is None


async def add_group_usage(
    pool: async_sessionmaker[AsyncSession],
    chat_id: int,
    day: date,
    model: str,
    prompt: int,
    completion: int,
    cost: float = 0.0,
) -> None:
    async with pool() as session, session.begin():
        await UsageRepository(session).add_group(
            chat_id=chat_id,
            day=day,
            model=model,
            prompt_tokens=prompt,
            completion_tokens=completion,
            cost=cost,
        )


async def test_a_groups_usage_adds_up_per_day_and_model_and_its_look_up_brings_its_limits(
    pool: async_sessionmaker[AsyncSession],
) -> None:
    async with pool() as session, session.begin():
        session.add_all(
            [
                Group(
                    chat_id=-1001,
                    status=GroupStatus.ALLOWED,
                    budget_unit=BudgetUnit.TOKENS,
                    budget_daily=1000.0,
                ),
                Group(chat_id=-1002, status=GroupStatus.ALLOWED),
            ]
        )
    await add_group_usage(pool, -1001, APRIL_30, "m", 1000, 1000, 9.0)  # last month
    await add_group_usage(pool, -1001, MAY_1, "m", 100, 10, 1.0)
    await add_group_usage(pool, -1001, MAY_15, "m", 50, 5, 0.5)
    await add_group_usage(pool, -1001, MAY_15, "m", 50, 5, 0.5)  # the same row, added to
    await add_group_usage(pool, -1001, MAY_15, "big", 500, 50, 2.0)
    await add_group_usage(pool, -1002, MAY_15, "m", 7, 3, 0.25)
    async with pool() as session:
        rows = (
            await session.execute(
                select(GroupUsage.day, GroupUsage.model, GroupUsage.requests).where(
                    GroupUsage.chat_id == -1001, GroupUsage.day == MAY_15
                )
            )
        ).all()
        usage = UsageRepository(session)
        today = await usage.group_totals(-1001, since=MAY_15)
        month = await usage.group_totals(-1001, since=MAY_1)
        unused = await usage.group_totals(-1003, since=MAY_1)
        spent = await usage.group_spending(-1001, today=MAY_15, month_start=MAY_1)
        other = await usage.group_spending(-1002, today=MAY_15, month_start=MAY_1)
        unknown = await usage.group_spending(-1003, today=MAY_15, month_start=MAY_1)
    assert sorted(tuple(row) for row in rows) == [(MAY_15, "big", 1), (MAY_15, "m", 2)]
    assert today == UsageTotals(3, 600, 60, 3.0)
    assert month == UsageTotals(4, 700, 70, 4.0)
    assert unused == UsageTotals()
    assert spent == Spending(Role.USER, BudgetUnit.TOKENS, 1000.0, None, 660, 3.0, 770, 4.0)
    assert other == Spending(Role.USER, None, None, None, 10, 0.25, 10, 0.25)
    assert unknown is None
