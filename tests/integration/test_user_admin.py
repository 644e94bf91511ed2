"""UserAdminService on a real database (SQLite and PostgreSQL): order, status, usage, changes."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.config import AccessSettings
from app.db.models import AccessRequest, Persona, Usage, User
from app.domain.enums import BudgetUnit, RequestStatus, Role
from app.domain.rights import Right
from app.domain.usage import Limits
from app.domain.user_admin import (
    AdminAction,
    InvalidBudget,
    LastAdmin,
    ListedAdmin,
    Note,
    PersonaNotFound,
    Spent,
    UserNotFound,
    UserStatus,
)
from app.services.user_admin import UserAdminService

TODAY = date(2026, 3, 15)
Pool = async_sessionmaker[AsyncSession]


def service(**access: Any) -> UserAdminService:
    return UserAdminService(AccessSettings(_env_file=None, **access), today=lambda: TODAY)


def user(user_id: int, age_days: int = 0, **values: Any) -> User:
    """A user who first wrote `age_days` ago."""
    created = datetime(2026, 3, 1, tzinfo=UTC) - timedelta(days=age_days)
    values.setdefault("first_name", f"U{user_id}")
    return User(id=user_id, created_at=created, **values)


async def add(pool: Pool, *rows: Any) -> None:
    async with pool() as session, session.begin():
        for row in rows:
            session.add(row)
            await session.flush()  # users before the rows that refer to them


def usage(user_id: int, day: date, model: str, prompt: int, completion: int, cost: float) -> Usage:
    return Usage(
        user_id=user_id,
        day=day,
        model=model,
        requests=1,
        prompt_tokens=prompt,
        completion_tokens=completion,
        cost=cost,
    )


# --- reading ---------------------------------------------------------------------------------


async def test_list_shows_admins_then_requests_then_allowed_then_the_rest_newest_first(
    pool: Pool,
) -> None:
    await add(
        pool,
        user(1, age_days=9, blocked=True),
        user(2, age_days=8),  # no access
        user(3, age_days=7, has_access=True),
        user(4, age_days=6, role=Role.ADMIN),
        user(5, age_days=5),  # pending
        user(6, age_days=4, has_access=True),
        user(7, age_days=3),  # no access
        user(8, age_days=2, role=Role.ADMIN),
        user(9, age_days=1),  # pending
        AccessRequest(user_id=5, status=RequestStatus.PENDING),
        AccessRequest(user_id=9, status=RequestStatus.PENDING),
        AccessRequest(user_id=7, status=RequestStatus.DENIED),
    )
    async with pool() as session:
        users, total = await service().list_users(session, offset=0, limit=None)
    assert [u.id for u in users] == [8, 4, 9, 5, 6, 3, 7, 2, 1]
    assert total == 9


async def test_status_names_where_each_user_stands(pool: Pool) -> None:
    await add(
        pool,
        user(1, role=Role.ADMIN),
        user(2, has_access=True),
        user(3),
        user(4),
        user(5, blocked=True, has_access=True),
        AccessRequest(user_id=3, status=RequestStatus.PENDING),
    )
    async with pool() as session:
        statuses = {u.id: u.status for u in (await service().list_users(session))[0]}
    assert statuses == {
        1: UserStatus.ADMIN,
        2: UserStatus.ALLOWED,
        3: UserStatus.PENDING,
        4: UserStatus.NO_ACCESS,
        5: UserStatus.BLOCKED,
    }


async def test_everyone_allowed_makes_every_unblocked_user_allowed(pool: Pool) -> None:
    await add(pool, user(1), user(2, blocked=True))
    async with pool() as session:
        users, _ = await service(allowed_user_ids="*").list_users(session)
    assert [(u.id, u.status) for u in users] == [
        (1, UserStatus.ALLOWED),
        (2, UserStatus.BLOCKED),
    ]


async def test_rights_are_in_effect_only_with_chat_but_granted_ones_are_shown(pool: Pool) -> None:
    await add(pool, user(1, can_create_personas=True, can_edit_personas=False))
    async with pool() as session:
        summary = await service().get(session, 1)
    assert summary.rights == frozenset()
    assert summary.granted == {Right.CREATE_PERSONAS}


async def test_usage_is_summed_over_models_for_today_and_this_month(pool: Pool) -> None:
    await add(
        pool,
        user(1),
        user(2),
        usage(1, TODAY, "gpt-4o-mini", 100, 50, 0.25),
        usage(1, TODAY, "gpt-4o", 10, 5, 0.5),
        usage(1, TODAY.replace(day=1), "gpt-4o", 1000, 0, 1.0),
        usage(1, date(2026, 2, 28), "gpt-4o", 99_999, 1, 9.0),  # last month
        usage(1, TODAY + timedelta(days=1), "gpt-4o", 77_777, 0, 7.0),  # not yet
        usage(2, TODAY, "gpt-4o", 1, 2, 0.0),
    )
    async with pool() as session:
        by_id = {u.id: u for u in (await service().list_users(session))[0]}
    assert by_id[1].today.tokens == 165
    assert by_id[1].today.cost == pytest.approx(0.75)
    assert by_id[1].month.tokens == 1165
    assert by_id[1].month.cost == pytest.approx(1.75)
    assert by_id[2].today == by_id[2].month == Spent(3, 0.0)


async def test_a_user_without_usage_has_zero_sums(pool: Pool) -> None:
    await add(pool, user(1))
    async with pool() as session:
        summary = await service().get(session, 1)
    assert summary.today == summary.month == Spent(0, 0.0)


async def test_pages_come_with_the_total(pool: Pool) -> None:
    await add(pool, *(user(i, age_days=i) for i in range(1, 8)))
    async with pool() as session:
        first, total = await service().list_users(session, offset=0, limit=3)
        last, _ = await service().list_users(session, offset=6, limit=3)
    assert [u.id for u in first] == [1, 2, 3]
    assert [u.id for u in last] == [7]
    assert total == 7


async def test_get_has_persona_and_budget(pool: Pool) -> None:
    await add(
        pool,
        Persona(id=5, name="Pirate", system_prompt="Arr."),
        user(
            1,
            username="ann",
            persona_id=5,
            budget_unit=BudgetUnit.MONEY,
            budget_daily=None,
            budget_monthly=3.5,
        ),
        user(2),
    )
    async with pool() as session:
        ann = await service().get(session, 1)
        other = await service().get(session, 2)
    assert (ann.persona_id, ann.persona_name) == (5, "Pirate")
    assert ann.budget == Limits(BudgetUnit.MONEY, None, 3.5)
    assert ann.display_name == "U1 @ann"
    assert (other.persona_name, other.budget) == (None, None)


async def test_get_of_an_unknown_user_raises_user_not_found(pool: Pool) -> None:
    async with pool() as session:
        with pytest.raises(UserNotFound, match="User 404 is not known"):
            await service().get(session, 404)


# --- allow and block -------------------------------------------------------------------------


async def test_allow_creates_an_unknown_user_with_the_new_user_rights(pool: Pool) -> None:
    async with pool() as session, session.begin():
        change = await service(new_user_rights="edit_personas").allow(session, 77)
    assert change.changed
    assert change.notes == (Note.CREATED,)
    assert change.user.status is UserStatus.ALLOWED
    assert change.user.rights == {Right.CHAT, Right.EDIT_PERSONAS}


async def test_allow_unblocks_and_approves_the_pending_request(pool: Pool) -> None:
    await add(
        pool,
        user(1, blocked=True),
        AccessRequest(user_id=1, status=RequestStatus.PENDING),
    )
    async with pool() as session, session.begin():
        change = await service().allow(session, 1, by=99)
    async with pool() as session:
        request = await session.scalar(select(AccessRequest))
    assert change.user.status is UserStatus.ALLOWED
    assert request is not None
    assert (request.status, request.decided_by) == (RequestStatus.APPROVED, 99)
    assert request.decided_at is not None


async def test_allow_of_an_allowed_user_changes_nothing(pool: Pool) -> None:
    await add(pool, user(1, has_access=True))
    async with pool() as session, session.begin():
        change = await service().allow(session, 1)
    assert not change.changed


async def test_block_takes_access_and_denies_the_pending_request(pool: Pool) -> None:
    await add(
        pool,
        user(1, has_access=True),
        AccessRequest(user_id=1, status=RequestStatus.PENDING),
    )
    async with pool() as session, session.begin():
        change = await service().block(session, 1)
    async with pool() as session:
        row = await session.get(User, 1)
        request = await session.scalar(select(AccessRequest))
    assert change.user.status is UserStatus.BLOCKED
    assert row is not None and (row.blocked, row.has_access) == (True, False)
    assert request is not None and request.status is RequestStatus.DENIED


async def test_block_of_an_unknown_user_raises_user_not_found(pool: Pool) -> None:
    async with pool() as session, session.begin():
        with pytest.raises(UserNotFound):
            await service().block(session, 404)


async def test_blocking_an_admin_takes_the_role_too(pool: Pool) -> None:
    await add(pool, user(1, role=Role.ADMIN), user(2, role=Role.ADMIN))
    async with pool() as session, session.begin():
        change = await service().block(session, 2)
    assert change.user.status is UserStatus.BLOCKED
    assert change.user.rights == frozenset()
    assert change.notes == (Note.WAS_ADMIN,)


async def test_an_admin_in_admin_ids_cannot_be_blocked(pool: Pool) -> None:
    await add(pool, user(1, role=Role.ADMIN), user(2, role=Role.ADMIN))
    async with pool() as session, session.begin():
        with pytest.raises(ListedAdmin, match="listed in ADMIN_IDS") as refused:
            await service(admin_ids="1").block(session, 1)
    assert refused.value.action is AdminAction.BLOCK


async def test_the_last_admin_cannot_be_blocked(pool: Pool) -> None:
    await add(pool, user(1, role=Role.ADMIN), user(2, role=Role.ADMIN, blocked=True))
    async with pool() as session, session.begin():
        with pytest.raises(LastAdmin, match="last admin"):
            await service().block(session, 1)


async def test_an_admin_id_not_yet_seeded_still_counts_as_another_admin(pool: Pool) -> None:
    await add(pool, user(1, role=Role.ADMIN))
    async with pool() as session, session.begin():
        change = await service(admin_ids="500").block(session, 1)
    assert change.user.status is UserStatus.BLOCKED


# --- rights ----------------------------------------------------------------------------------


@pytest.mark.parametrize("right", [Right.CREATE_PERSONAS, Right.EDIT_PERSONAS])
async def test_a_persona_right_without_chat_is_stored_with_a_note(pool: Pool, right: Right) -> None:
    await add(pool, user(1, can_create_personas=False, can_edit_personas=False))
    async with pool() as session, session.begin():
        change = await service().grant(session, 1, right)
    assert change.changed
    assert change.notes == (Note.NEEDS_CHAT,)
    assert change.user.granted == {right}
    assert change.user.rights == frozenset()


@pytest.mark.parametrize("right", [Right.CREATE_PERSONAS, Right.EDIT_PERSONAS])
async def test_grant_and_revoke_a_persona_right_of_an_allowed_user(
    pool: Pool, right: Right
) -> None:
    await add(pool, user(1, has_access=True, can_create_personas=False, can_edit_personas=False))
    async with pool() as session, session.begin():
        granted = await service().grant(session, 1, right)
        revoked = await service().revoke(session, 1, right)
    assert granted.notes == ()
    assert granted.user.rights == {Right.CHAT, right}
    assert revoked.changed
    assert revoked.user.rights == {Right.CHAT}


async def test_grant_chat_is_allow(pool: Pool) -> None:
    await add(pool, user(1, blocked=True))
    async with pool() as session, session.begin():
        change = await service().grant(session, 1, Right.CHAT)
    assert change.user.status is UserStatus.ALLOWED


async def test_revoking_chat_leaves_no_access_but_not_blocked(pool: Pool) -> None:
    await add(pool, user(1, has_access=True))
    async with pool() as session, session.begin():
        change = await service().revoke(session, 1, Right.CHAT)
    assert change.user.status is UserStatus.NO_ACCESS
    assert change.notes == ()


async def test_revoking_chat_of_a_user_in_allowed_user_ids_warns_it_comes_back(
    pool: Pool,
) -> None:
    await add(pool, user(1, has_access=True))
    async with pool() as session, session.begin():
        change = await service(allowed_user_ids="1").revoke(session, 1, Right.CHAT)
    assert change.notes == (Note.LISTED_ALLOWED,)


async def test_revoking_chat_while_everyone_is_allowed_warns(pool: Pool) -> None:
    await add(pool, user(1, has_access=True))
    async with pool() as session, session.begin():
        change = await service(allowed_user_ids="*").revoke(session, 1, Right.CHAT)
    assert change.notes == (Note.EVERYONE_ALLOWED,)


async def test_grant_admin_creates_unblocks_and_gives_every_right(pool: Pool) -> None:
    async with pool() as session, session.begin():
        change = await service().grant(session, 9, Right.ADMIN)
    assert change.notes == (Note.CREATED,)
    assert change.user.status is UserStatus.ADMIN
    assert change.user.rights == frozenset(Right)


async def test_revoking_a_right_of_an_admin_notes_they_keep_everything(pool: Pool) -> None:
    await add(pool, user(1, role=Role.ADMIN, has_access=True))
    async with pool() as session, session.begin():
        change = await service().revoke(session, 1, Right.EDIT_PERSONAS)
    assert change.notes == (Note.ADMIN_HAS_ALL,)


async def test_revoke_admin_leaves_an_allowed_user(pool: Pool) -> None:
    await add(pool, user(1, role=Role.ADMIN, has_access=True), user(2, role=Role.ADMIN))
    async with pool() as session, session.begin():
        change = await service().revoke(session, 1, Right.ADMIN)
    assert change.user.status is UserStatus.ALLOWED


async def test_revoke_admin_is_refused_for_admin_ids_and_the_last_admin(pool: Pool) -> None:
    await add(pool, user(1, role=Role.ADMIN), user(2, role=Role.ADMIN))
    async with pool() as session, session.begin():
        with pytest.raises(ListedAdmin, match="cannot lose the admin role") as listed:
            await service(admin_ids="2").revoke(session, 2, Right.ADMIN)
        await service().revoke(session, 2, Right.ADMIN)
        with pytest.raises(LastAdmin) as last:
            await service().revoke(session, 1, Right.ADMIN)
    assert listed.value.action is last.value.action is AdminAction.REVOKE_ADMIN


async def test_revoke_of_an_unknown_user_raises_user_not_found(pool: Pool) -> None:
    async with pool() as session, session.begin():
        with pytest.raises(UserNotFound):
            await service().revoke(session, 404, Right.CHAT)


# --- persona and budget ----------------------------------------------------------------------


async def test_set_persona_checks_the_persona_and_none_is_the_default(pool: Pool) -> None:
    await add(pool, Persona(id=5, name="Pirate", system_prompt="Arr."), user(1))
    async with pool() as session, session.begin():
        chosen = await service().set_persona(session, 1, 5)
        with pytest.raises(PersonaNotFound):
            await service().set_persona(session, 1, 6)
        default = await service().set_persona(session, 1, None)
    assert chosen.user.persona_name == "Pirate"
    assert default.user.persona_id is None


async def test_set_budget_and_back_to_the_owners_defaults(pool: Pool) -> None:
    await add(pool, user(1))
    async with pool() as session, session.begin():
        own = await service().set_budget(session, 1, BudgetUnit.TOKENS, 1000, None)
        back = await service().set_budget(session, 1, None)
    assert own.user.budget == Limits(BudgetUnit.TOKENS, 1000, None)
    assert back.user.budget is None


@pytest.mark.parametrize(
    ("unit", "daily", "monthly"),
    [
        (BudgetUnit.TOKENS, 0, None),
        (BudgetUnit.MONEY, None, -1.0),
        (BudgetUnit.MONEY, float("nan"), None),
        (None, 10, None),
    ],
)
async def test_set_budget_refuses_what_is_not_a_limit(
    pool: Pool, unit: BudgetUnit | None, daily: float | None, monthly: float | None
) -> None:
    await add(pool, user(1))
    async with pool() as session, session.begin():
        with pytest.raises(InvalidBudget):
            await service().set_budget(session, 1, unit, daily, monthly)
