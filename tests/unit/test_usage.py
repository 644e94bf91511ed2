"""The pure parts of usage and budgets: reset times, prices, limits and the boundary."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta, timezone

import pytest

from app.config import BudgetSettings
from app.domain.enums import BudgetUnit
from app.domain.usage import Limits, Period
from app.i18n import create_i18n
from app.services.usage import limit_reached, limits_for, month_start, next_day, next_month
from app.views.usage import money, wait

NOW = datetime(2030, 5, 15, 21, 30, tzinfo=UTC)


@pytest.fixture
def english() -> Iterator[None]:
    i18n = create_i18n()
    with i18n.context(), i18n.use_locale("en"):
        yield


@pytest.mark.parametrize(
    ("now", "expected"),
    [
        (NOW, datetime(2030, 5, 16, tzinfo=UTC)),
        (datetime(2030, 5, 15, 0, 0, tzinfo=UTC), datetime(2030, 5, 16, tzinfo=UTC)),
        (datetime(2030, 5, 31, 23, 59, 59, tzinfo=UTC), datetime(2030, 6, 1, tzinfo=UTC)),
        (datetime(2030, 12, 31, 12, tzinfo=UTC), datetime(2031, 1, 1, tzinfo=UTC)),
    ],
)
def test_a_daily_limit_resets_at_the_next_utc_midnight(now: datetime, expected: datetime) -> None:
    assert next_day(now) == expected


def test_the_utc_day_counts_not_the_local_one() -> None:
    # 01:30 on the 16th in Moscow is still the 15th in UTC.
    moscow = datetime(2030, 5, 16, 1, 30, tzinfo=timezone(timedelta(hours=3)))
    assert next_day(moscow) == datetime(2030, 5, 16, tzinfo=UTC)
    assert next_month(moscow) == datetime(2030, 6, 1, tzinfo=UTC)


@pytest.mark.parametrize(
    ("now", "expected"),
    [
        (NOW, datetime(2030, 6, 1, tzinfo=UTC)),
        (datetime(2030, 5, 1, 0, 0, tzinfo=UTC), datetime(2030, 6, 1, tzinfo=UTC)),
        (datetime(2030, 12, 31, 23, 59, tzinfo=UTC), datetime(2031, 1, 1, tzinfo=UTC)),
        (datetime(2032, 2, 29, 10, tzinfo=UTC), datetime(2032, 3, 1, tzinfo=UTC)),
    ],
)
def test_a_monthly_limit_resets_on_the_first_of_the_next_month(
    now: datetime, expected: datetime
) -> None:
    assert next_month(now) == expected


def test_a_month_starts_on_its_first_day() -> None:
    assert month_start(NOW.date()) == NOW.date().replace(day=1)


def test_the_wait_until_a_reset_reads_in_days_hours_and_minutes(english: None) -> None:
    assert wait(next_day(NOW), NOW) == "in 2 h 30 min"
    assert wait(next_month(NOW), NOW) == "in 16 d 2 h"
    assert wait(NOW + timedelta(minutes=7, seconds=10), NOW) == "in 8 min"
    assert wait(NOW + timedelta(seconds=1), NOW) == "in 1 min"
    assert wait(NOW, NOW) == "in less than a minute"


def test_prices_are_per_million_tokens_input_and_output() -> None:
    budget = BudgetSettings(prices="gpt-4o-mini=0.15/0.60, gpt-4o=2.50/10, flat=1", _env_file=None)
    assert budget.cost("gpt-4o-mini", 1_000_000, 1_000_000) == pytest.approx(0.75)
    assert budget.cost("gpt-4o", 2_000, 500) == pytest.approx(0.01)
    assert budget.cost("flat", 500_000, 500_000) == pytest.approx(1.0)  # one price for both
    assert budget.cost("unlisted", 10**9, 10**9) == 0.0


def test_a_price_per_image_is_read_beside_the_token_and_minute_prices() -> None:
    budget = BudgetSettings(
        prices="gpt-4o=2.50/10, gpt-image-1=0.04/image, whisper-1=0.006/min, gpt-image-1=5/40",
        _env_file=None,
    )
    assert budget.image_prices == {"gpt-image-1": 0.04}
    assert budget.minute_prices == {"whisper-1": 0.006}
    assert budget.prices == {"gpt-4o": (2.50, 10.0), "gpt-image-1": (5.0, 40.0)}
    # Two pictures, with the tokens they took at the model's token prices.
    assert budget.cost("gpt-image-1", 1_000, 2_000, images=2) == pytest.approx(0.08 + 0.005 + 0.08)
    # A model without a per-image price: pictures cost nothing of their own.
    assert budget.cost("gpt-4o", 0, 0, images=3) == 0.0


def test_money_shows_small_sums_to_four_decimals_and_the_currency_where_it_belongs(
    english: None,
) -> None:
    assert money(0.0012, "$") == "$0.0012"
    assert money(0.5, "$") == "$0.50"
    assert money(1234.567, "$") == "$1,234.57"
    assert money(0, "€") == "€0.00"
    assert money(2.5, "EUR") == "2.50 EUR"
    assert money(2.5, "₽") == "2.50 ₽"
    assert money(0.00001, "$") == "$0.00"


def test_money_is_written_the_users_language_way() -> None:
    i18n = create_i18n()
    with i18n.context(), i18n.use_locale("ru"):
        assert money(1234.5, "₽") == "1\xa0234,50 ₽"
        assert money(0.0012, "$") == "$0,0012"


def test_admins_have_no_limits() -> None:
    defaults = BudgetSettings(daily=100, monthly=1000, _env_file=None)
    assert (
        limits_for(defaults, is_admin=True, unit=BudgetUnit.TOKENS, daily=1.0, monthly=None) is None
    )


def test_a_users_own_unit_replaces_the_owners_defaults_and_a_null_limit_means_none() -> None:
    defaults = BudgetSettings(daily=100, monthly=1000, _env_file=None)
    own = limits_for(defaults, is_admin=False, unit=BudgetUnit.MONEY, daily=None, monthly=5.0)
    assert own == Limits(BudgetUnit.MONEY, None, 5.0)
    default = limits_for(defaults, is_admin=False, unit=None, daily=None, monthly=None)
    assert default == Limits(BudgetUnit.TOKENS, 100, 1000)


def test_spending_equal_to_the_limit_is_refused_and_one_token_less_is_allowed() -> None:
    limits = Limits(BudgetUnit.TOKENS, 1000, None)
    assert limit_reached(limits, 999, 999, NOW) is None
    over = limit_reached(limits, 1000, 1000, NOW)
    assert over is not None
    assert (over.period, over.spent, over.limit) == (Period.DAY, 1000, 1000)
    assert over.resets_at == datetime(2030, 5, 16, tzinfo=UTC)


def test_money_summed_in_floats_still_meets_its_limit() -> None:
    limits = Limits(BudgetUnit.MONEY, 0.3, None)
    spent = 0.1 + 0.2 - 1e-12  # what adding float costs may leave
    assert limit_reached(limits, spent, spent, NOW) is not None
    assert limit_reached(limits, 0.29, 0.29, NOW) is None


def test_when_both_limits_are_reached_the_monthly_one_is_reported() -> None:
    limits = Limits(BudgetUnit.TOKENS, 100, 500)
    over = limit_reached(limits, 100, 500, NOW)
    assert over is not None
    assert (over.period, over.resets_at) == (Period.MONTH, datetime(2030, 6, 1, tzinfo=UTC))
    daily_only = limit_reached(limits, 100, 300, NOW)
    assert daily_only is not None and daily_only.period is Period.DAY


def test_no_limits_refuse_nothing() -> None:
    assert limit_reached(None, 10**9, 10**9, NOW) is None
    assert limit_reached(Limits(BudgetUnit.TOKENS, None, None), 10**9, 10**9, NOW) is None
