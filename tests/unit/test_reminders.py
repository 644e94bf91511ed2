"""When a repeating reminder comes next (app/plugins/reminders.py): the same time of day in
its zone, across daylight saving time, months of other lengths and leap years."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

import pytest

from app.plugins.reminders import next_time

BERLIN = ZoneInfo("Europe/Berlin")


def berlin(*parts: int) -> datetime:
    return datetime(*parts, tzinfo=BERLIN)


@pytest.mark.parametrize(
    ("previous", "repeat", "day", "expected"),
    [
        # Summer time begins on 28 March 2027: 09:00 stays 09:00 (07:00 UTC, not 08:00).
        (berlin(2027, 3, 27, 9, 0), "daily", 27, berlin(2027, 3, 28, 9, 0)),
        (berlin(2027, 10, 30, 9, 0), "daily", 30, berlin(2027, 10, 31, 9, 0)),
        (berlin(2026, 12, 4, 8, 0), "weekdays", 4, berlin(2026, 12, 7, 8, 0)),  # Fri -> Mon
        (berlin(2026, 12, 7, 8, 0), "weekdays", 7, berlin(2026, 12, 8, 8, 0)),
        (berlin(2026, 12, 4, 8, 0), "weekly", 4, berlin(2026, 12, 11, 8, 0)),
        # The 31st: the 30th in April, the 31st again in May; December rolls the year.
        (berlin(2027, 3, 31, 10, 0), "monthly", 31, berlin(2027, 4, 30, 10, 0)),
        (berlin(2027, 4, 30, 10, 0), "monthly", 31, berlin(2027, 5, 31, 10, 0)),
        (berlin(2026, 12, 15, 10, 0), "monthly", 15, berlin(2027, 1, 15, 10, 0)),
        (berlin(2028, 2, 29, 12, 0), "yearly", 29, berlin(2029, 2, 28, 12, 0)),
        (berlin(2031, 2, 28, 12, 0), "yearly", 29, berlin(2032, 2, 29, 12, 0)),
    ],
)
def test_the_next_time_keeps_the_time_of_day_in_its_zone(
    previous: datetime, repeat: str, day: int, expected: datetime
) -> None:
    later = next_time(previous, repeat, "Europe/Berlin", day)
    assert later == expected
    assert later.astimezone(BERLIN).hour == previous.hour
