"""`make backfill`'s range: New York days, checked where they enter."""

import datetime

import pytest

from common.feed.backfill import MAX_DAYS, day_window, days, epoch_ms, parse_range

TODAY = datetime.date(2026, 11, 24)


def test_a_range_is_every_new_york_day_from_first_to_last():
    first, last = parse_range("2026-11-20", "2026-11-23", TODAY)
    assert list(days(first, last)) == [datetime.date(2026, 11, d) for d in (20, 21, 22, 23)]
    assert parse_range("2026-11-24", "", TODAY) == (TODAY, TODAY), "TO defaults to today"


@pytest.mark.parametrize("first, last, message", [
    ("", "", "FROM='' is not a date; accepted: YYYY-MM-DD"),
    ("2026-11-24", "24/11/2026", "TO='24/11/2026' is not a date"),
    ("2026-11-24", "2026-11-20", "FROM=2026-11-24 is after TO=2026-11-20"),
    ("2026-11-24", "2026-11-25", "is in the future"),
    ("2026-09-01", "2026-11-24", f"spans 85 days; Schwab serves about {MAX_DAYS}"),
])
def test_a_bad_range_is_refused_naming_it(first, last, message):
    with pytest.raises(ValueError, match=message):
        parse_range(first, last, TODAY)


def test_a_day_is_new_yorks_midnight_to_midnight_whatever_daylight_saving_does():
    start, end = day_window(datetime.date(2026, 11, 1))  # the day clocks fall back: 25 hours
    assert start.isoformat() == "2026-11-01T00:00:00-04:00"
    assert epoch_ms(end) - epoch_ms(start) == 25 * 3_600_000 - 1
