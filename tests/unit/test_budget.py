"""The storage budget's pure core: which days go in which order, the rate, and the level health shows."""

from __future__ import annotations

from datetime import date, datetime, timedelta

from common.feed.market_hours import NEW_YORK
from common.store.budget import (LOW_WATER, MB, TRIM_AT, StoredDay, bytes_per_day, choose, day_fraction, judge,
                                  must_trim, trim_before)

TODAY = date(2026, 12, 7)
EMPTY = 8192
TABLES = ("equity_data", "indicators", "option_prices", "equity_bars", "equity_quotes", "streaming_metrics",
          "stream_metrics")
#: MB a table adds on a trading day.
DAILY = {"equity_data": 5, "indicators": 4, "option_prices": 6, "equity_bars": 0.1, "equity_quotes": 0,
         "streaming_metrics": 1, "stream_metrics": 0.5}


def days(past: int, ahead: int = 2) -> list[StoredDay]:
    """`past` days of data before today, today half full, and empty days ahead."""
    stored = []
    for offset in range(-past, ahead + 1):
        day = TODAY + timedelta(days=offset)
        share = 1.0 if offset < 0 else 0.5 if offset == 0 else 0.0
        stored += [StoredDay(table, day, EMPTY + round(DAILY[table] * MB * share)) for table in TABLES]
    return stored


def test_the_oldest_day_goes_first_metrics_then_ticks_then_options_then_indicators_and_bars_last():
    stored = days(5)
    chosen = choose(stored, database_bytes=120 * MB, budget_bytes=100 * MB, today=TODAY)
    assert [(s.day, s.table) for s in chosen[:6]] == [
        (TODAY - timedelta(days=5), table) for table in
        ("streaming_metrics", "stream_metrics", "equity_data", "equity_quotes", "option_prices", "indicators")]
    assert all(s.day < TODAY for s in chosen), "never today's nor a day ahead"
    freed = sum(s.bytes for s in chosen)
    assert 120 * MB - freed <= LOW_WATER * 100 * MB < 120 * MB - freed + chosen[-1].bytes, \
        "down to the low-water mark, no more"
    assert "equity_bars" not in {s.table for s in chosen}, "bars while anything else can go"


def test_bars_go_only_when_nothing_but_today_is_left_of_the_rest():
    stored = [s for s in days(3) if s.table == "equity_bars" or s.day >= TODAY]
    chosen = choose(stored, database_bytes=100 * MB, budget_bytes=100 * MB, today=TODAY)
    assert [s.table for s in chosen] == ["equity_bars"] * 3 and [s.day for s in chosen] == sorted(s.day for s in chosen)


def test_under_the_high_water_mark_only_what_is_past_its_retention_goes():
    stored = days(10)
    assert choose(stored, database_bytes=94 * MB, budget_bytes=100 * MB, today=TODAY) == []
    aged = choose(stored, database_bytes=10 * MB, budget_bytes=100 * MB, today=TODAY, retention_days=9,
                  metrics_retention_days=3)
    metrics_days = {s.day for s in aged if s.table in ("streaming_metrics", "stream_metrics")}
    assert metrics_days == {TODAY - timedelta(days=n) for n in range(3, 11)}
    assert {s.day for s in aged if s.table == "equity_data"} == {TODAY - timedelta(days=n) for n in (9, 10)}
    assert choose(stored, 10 * MB, 0, TODAY) == [], "no budget, no retention: nothing goes"


def test_the_rate_is_the_mean_of_complete_days_and_before_one_today_scaled_to_a_day():
    full_day = round(sum(DAILY.values()) * MB)
    assert abs(bytes_per_day(days(3), TODAY, 0.5) - full_day) <= 1
    assert abs(bytes_per_day(days(0), TODAY, 0.5) - full_day) <= 2, "half a day's growth at half the day"
    assert bytes_per_day(days(0, ahead=0)[:0], TODAY, 0.5) is None


def test_levels_ok_then_warn_near_the_budget_then_crit_and_crit_when_a_day_no_longer_fits():
    stored = days(3)
    assert judge(50 * MB, 500 * MB, stored, TODAY, 0.5).level == "ok"
    assert judge(480 * MB, 500 * MB, stored, TODAY, 0.5).level == "warn"
    assert judge(491 * MB, 500 * MB, stored, TODAY, 0.5).level == "crit"
    small = judge(20 * MB, 20 * MB, [s for s in stored if s.day >= TODAY], TODAY, 0.5)
    assert small.level == "crit" and small.days_left < 1 and "no longer fits" in small.detail
    trimmed = judge(18 * MB, 20 * MB, [s for s in stored if s.day >= TODAY], TODAY, 0.5)
    assert trimmed.level == "warn" and "no longer fits" in trimmed.detail and "archive" in trimmed.detail, \
        "a day that does not fit is trimmed as it goes: a warning until the budget itself is near"
    assert judge(20 * MB, 0, stored, TODAY, 0.5).level == "ok"
    left = judge(100 * MB, 500 * MB, stored, TODAY, 0.5)
    past = sum(s.bytes for s in stored if s.day < TODAY)
    assert left.days_left == round((400 * MB + past) / left.bytes_per_day, 1), "past days count as room"


def test_the_fraction_of_the_new_york_day():
    assert day_fraction(datetime(2026, 12, 7, 12, tzinfo=NEW_YORK)) == 0.5
    assert day_fraction(datetime(2026, 3, 8, 12, tzinfo=NEW_YORK)) == 11 / 23, "the clocks sprang forward"


def test_with_a_rate_measured_the_keeper_frees_a_days_growth_below_the_high_water_mark():
    stored = days(10)
    chosen = choose(stored, database_bytes=96 * MB, budget_bytes=100 * MB, today=TODAY, daily_bytes=3 * MB)
    freed = sum(s.bytes for s in chosen)
    assert 96 * MB - freed <= 92 * MB < 96 * MB - freed + chosen[-1].bytes, "room for one more day, no more"


def test_today_is_trimmed_only_when_every_past_day_gone_would_not_bring_the_database_under_high_water():
    stored = days(3)
    past = sum(s.bytes for s in stored if s.day < TODAY)
    assert not must_trim(stored, past + 10 * MB, 100 * MB, TODAY), "past days are room enough"
    assert must_trim(stored, past + 91 * MB, 100 * MB, TODAY)
    assert not must_trim(stored, past + 91 * MB, 0, TODAY), "no budget, no trimming"
    assert not must_trim(stored, past + round(TRIM_AT * 100 * MB), 100 * MB, TODAY)


def test_today_is_trimmed_on_whole_hours_at_least_half_an_hour_back_and_never_into_yesterday():
    assert trim_before(datetime(2026, 12, 7, 14, 29, tzinfo=NEW_YORK)) == datetime(2026, 12, 7, 13, tzinfo=NEW_YORK)
    assert trim_before(datetime(2026, 12, 7, 14, 30, tzinfo=NEW_YORK)) == datetime(2026, 12, 7, 14, tzinfo=NEW_YORK)
    assert trim_before(datetime(2026, 12, 7, 0, 45, tzinfo=NEW_YORK)) is None, "midnight is no cut: nothing before it"
    assert trim_before(datetime(2026, 12, 7, 1, 31, tzinfo=NEW_YORK)) == datetime(2026, 12, 7, 1, tzinfo=NEW_YORK)
