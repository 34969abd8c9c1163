"""Market windows from Schwab's hours and the NYSE calendar, the schedule over them, and the clocks."""

from __future__ import annotations

import asyncio
import logging
import re
import time
from datetime import date, datetime, timedelta, timezone

import pytest

from common.feed.market_hours import (
    INDEX_OPTIONS_EXTRA,
    CombinedSchedule,
    FuturesSchedule,
    NEW_YORK,
    MarketHoursError,
    MarketSchedule,
    ScaledClock,
    SystemClock,
    Window,
    clock_from_spec,
    windows_from_calendar,
    windows_from_schwab,
)
from common.simulator import protocol

ALL = ("pre", "regular", "post")
LEAD = timedelta(minutes=5)

OPEN_2024_07_03 = {"equity": {"EQ": {
    "date": "2024-07-03", "marketType": "EQUITY", "product": "EQ", "productName": "equity", "isOpen": True,
    "sessionHours": {
        "preMarket": [{"start": "2024-07-03T07:00:00-04:00", "end": "2024-07-03T09:30:00-04:00"}],
        "regularMarket": [{"start": "2024-07-03T09:30:00-04:00", "end": "2024-07-03T13:00:00-04:00"}],
        "postMarket": [{"start": "2024-07-03T13:00:00-04:00", "end": "2024-07-03T17:00:00-04:00"}],
    },
}}}
CLOSED_2024_07_04 = {"equity": {"equity": {
    "date": "2024-07-04", "marketType": "EQUITY", "product": "equity", "isOpen": False,
}}}


def ny(year: int, month: int, day: int, hour: int, minute: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, tzinfo=NEW_YORK)


def simulated(day: date) -> dict:
    return protocol.market_hours(["equity"], day)


def schedule(sessions: tuple[str, ...] = ("regular",)) -> MarketSchedule:
    return MarketSchedule(simulated, sessions)


# --- parsing Schwab's body ---------------------------------------------------------------------------------


def test_a_literal_early_close_body():
    day = date(2024, 7, 3)
    assert windows_from_schwab(OPEN_2024_07_03, day, ("regular",)) == [
        Window(ny(2024, 7, 3, 9, 30), ny(2024, 7, 3, 13), ("regular",))]
    assert windows_from_schwab(OPEN_2024_07_03, day, ALL) == [Window(ny(2024, 7, 3, 7), ny(2024, 7, 3, 17), ALL)]


def test_a_literal_closed_body_has_no_windows():
    assert windows_from_schwab(CLOSED_2024_07_04, date(2024, 7, 4), ALL) == []


@pytest.mark.parametrize("day", [
    date(2026, 11, 25),  # an ordinary Wednesday
    date(2026, 11, 26),  # Thanksgiving
    date(2026, 11, 27),  # the early close after it
    date(2026, 11, 28),  # Saturday
    date(2026, 7, 3),  # Independence Day observed on the Friday
    date(2026, 12, 24),  # Christmas Eve, early close
    date(2026, 3, 9),  # the Monday after clocks go forward
    date(2024, 7, 3),
])
@pytest.mark.parametrize("sessions", [("regular",), ("pre",), ("post",), ALL, ("pre", "post")])
def test_the_simulators_body_parses_to_the_calendars_windows(day: date, sessions: tuple[str, ...]):
    assert windows_from_schwab(simulated(day), day, sessions) == windows_from_calendar(day, sessions)


def test_the_simulator_serves_the_literal_bodies():
    assert simulated(date(2024, 7, 3)) == OPEN_2024_07_03
    assert simulated(date(2024, 7, 4)) == CLOSED_2024_07_04


def test_adjacent_sessions_merge_and_separate_ones_do_not():
    assert windows_from_calendar(date(2026, 11, 25), ALL) == [Window(ny(2026, 11, 25, 7), ny(2026, 11, 25, 20), ALL)]
    assert windows_from_calendar(date(2026, 11, 25), ("pre", "post")) == [
        Window(ny(2026, 11, 25, 7), ny(2026, 11, 25, 9, 30), ("pre",)),
        Window(ny(2026, 11, 25, 16), ny(2026, 11, 25, 20), ("post",)),
    ]


def test_post_market_after_an_early_close_ends_at_17():
    assert windows_from_calendar(date(2026, 11, 27), ALL) == [Window(ny(2026, 11, 27, 7), ny(2026, 11, 27, 17), ALL)]
    assert windows_from_calendar(date(2026, 11, 27), ("post",)) == [
        Window(ny(2026, 11, 27, 13), ny(2026, 11, 27, 17), ("post",))]


def _without_sessions(body: dict) -> dict:
    product = dict(body["equity"]["EQ"])
    del product["sessionHours"]
    return {"equity": {"EQ": product}}


def _with_regular(start: object, end: object) -> dict:
    product = dict(OPEN_2024_07_03["equity"]["EQ"])
    product["sessionHours"] = {**product["sessionHours"], "regularMarket": [{"start": start, "end": end}]}
    return {"equity": {"EQ": product}}


@pytest.mark.parametrize("body, problem", [
    ({}, "one product under 'equity'"),
    ({"equity": {}}, "one product under 'equity'"),
    ({"errors": [{"status": 400}]}, "one product under 'equity'"),
    (simulated(date(2024, 7, 5)), "not 2024-07-03"),
    ({"equity": {"EQ": {"date": "2024-07-03"}}}, "isOpen=None"),
    (_without_sessions(OPEN_2024_07_03), "no sessionHours"),
    ({"equity": {"EQ": {**OPEN_2024_07_03["equity"]["EQ"], "sessionHours": {}}}}, "sessionHours.regularMarket=None"),
    (_with_regular("09:30", "2024-07-03T13:00:00-04:00"), "sessionHours.regularMarket.start='09:30'"),
    (_with_regular(None, "2024-07-03T13:00:00-04:00"), "sessionHours.regularMarket.start=None"),
    (_with_regular("2024-07-03T09:30:00", "2024-07-03T13:00:00-04:00"), "no UTC offset"),
    (_with_regular("2024-07-03T13:00:00-04:00", "2024-07-03T09:30:00-04:00"), "not after its start"),
])
def test_a_malformed_body_names_its_problem(body: dict, problem: str):
    with pytest.raises(MarketHoursError, match=re.escape(problem)):
        windows_from_schwab(body, date(2024, 7, 3), ("regular",))


# --- the schedule --------------------------------------------------------------------------------------------


def test_friday_after_the_close_waits_for_monday():
    wake, window = schedule().plan(ny(2026, 11, 20, 16, 30), LEAD)
    assert window == Window(ny(2026, 11, 23, 9, 30), ny(2026, 11, 23, 16), ("regular",))
    assert wake == ny(2026, 11, 23, 9, 25)


def test_thanksgiving_waits_for_the_early_close_friday():
    wake, window = schedule().plan(ny(2026, 11, 26, 10), LEAD)
    assert window == Window(ny(2026, 11, 27, 9, 30), ny(2026, 11, 27, 13), ("regular",))
    assert wake == ny(2026, 11, 27, 9, 25)


def test_the_observed_independence_day_skips_to_monday():
    wake, window = schedule().plan(ny(2026, 7, 2, 16, 1), LEAD)
    assert window.start == ny(2026, 7, 6, 9, 30) and wake == ny(2026, 7, 6, 9, 25)


def test_christmas_eve_closes_at_13_and_christmas_is_skipped():
    assert schedule().plan(ny(2026, 12, 24, 8), LEAD) == (
        ny(2026, 12, 24, 9, 25), Window(ny(2026, 12, 24, 9, 30), ny(2026, 12, 24, 13), ("regular",)))
    assert schedule().window_at_or_after(ny(2026, 12, 24, 13)).start == ny(2026, 12, 28, 9, 30)


def test_the_open_moves_an_hour_in_utc_when_the_clocks_change():
    friday = schedule().window_at_or_after(ny(2026, 3, 6, 9))
    monday = schedule().window_at_or_after(ny(2026, 3, 6, 17))
    assert friday.start == datetime(2026, 3, 6, 14, 30, tzinfo=timezone.utc)
    assert monday.start == datetime(2026, 3, 9, 13, 30, tzinfo=timezone.utc) == ny(2026, 3, 9, 9, 30)


def test_within_the_lead_or_the_window_streams_now():
    regular = schedule()
    window = Window(ny(2026, 11, 23, 9, 30), ny(2026, 11, 23, 16), ("regular",))
    assert regular.plan(ny(2026, 11, 23, 9, 24), LEAD) == (ny(2026, 11, 23, 9, 25), window)
    assert regular.plan(ny(2026, 11, 23, 9, 25), LEAD) == (None, window)
    assert regular.plan(ny(2026, 11, 23, 15, 59), LEAD) == (None, window)
    assert regular.plan(ny(2026, 11, 23, 16), LEAD)[1].start == ny(2026, 11, 24, 9, 30)


def test_extended_sessions_stream_from_7_to_20_as_one_window():
    wake, window = schedule(ALL).plan(ny(2026, 11, 23, 3), LEAD)
    assert window == Window(ny(2026, 11, 23, 7), ny(2026, 11, 23, 20), ALL) and wake == ny(2026, 11, 23, 6, 55)
    assert schedule(ALL).window_at_or_after(ny(2026, 11, 27, 16)).end == ny(2026, 11, 27, 17)


def test_always_open_streams_now_for_good():
    now = ny(2026, 11, 26, 3)
    wake, window = MarketSchedule(None, ("regular",), always_open=True).plan(now, LEAD)
    assert wake is None and window.start == now and window.end > now + timedelta(days=365)


def test_without_a_fetch_the_calendar_decides():
    thanksgiving = ny(2026, 11, 26, 10)
    assert MarketSchedule(None, ("regular",)).plan(thanksgiving, LEAD) == schedule().plan(thanksgiving, LEAD)


def test_each_day_is_fetched_once_per_new_york_date():
    fetched: list[date] = []

    def fetch(day: date) -> dict:
        fetched.append(day)
        return simulated(day)

    regular = MarketSchedule(fetch, ("regular",))
    regular.plan(ny(2026, 11, 20, 16, 30), LEAD)
    regular.plan(ny(2026, 11, 20, 23), LEAD)
    assert fetched == [date(2026, 11, 20), date(2026, 11, 21), date(2026, 11, 22), date(2026, 11, 23)]
    regular.plan(ny(2026, 11, 23, 9, 25), LEAD)  # a new day: Monday's hours again, in case they changed
    assert fetched[4:] == [date(2026, 11, 23)]


@pytest.mark.parametrize("failure, reason", [
    (ConnectionError("Schwab unreachable"), "Schwab unreachable"),
    (None, "isOpen=None"),
])
def test_a_failed_fetch_falls_back_to_the_calendar_and_warns_once_a_day(
    caplog: pytest.LogCaptureFixture, failure: Exception | None, reason: str
):
    def fetch(day: date) -> dict:
        if failure is not None:
            raise failure
        return {"equity": {"EQ": {"date": day.isoformat()}}}

    fallback = MarketSchedule(fetch, ("regular",), logger=logging.getLogger("test.market_hours"))
    for now in (ny(2026, 11, 25, 17), ny(2026, 11, 25, 18), ny(2026, 12, 23, 17), ny(2026, 7, 2, 17)):
        with caplog.at_level(logging.WARNING, logger="test.market_hours"):
            assert fallback.plan(now, LEAD) == schedule().plan(now, LEAD)
    warned = [(r.day, r.reason) for r in caplog.records if r.name == "test.market_hours"]
    days = ["2026-11-25", "2026-11-26", "2026-11-27", "2026-12-23", "2026-12-24", "2026-07-02", "2026-07-03",
            "2026-07-04", "2026-07-05", "2026-07-06"]
    assert [day for day, _ in warned] == days
    assert all(reason in why for _, why in warned)


# --- clocks --------------------------------------------------------------------------------------------------


def test_a_scaled_clock_runs_an_hour_a_second():
    clock = ScaledClock(ny(2026, 11, 27, 9), 3600)
    before_real = time.monotonic()
    before = clock.now()
    time.sleep(0.05)
    after = clock.now()
    real = time.monotonic() - before_real
    assert before.tzinfo == timezone.utc and before - ny(2026, 11, 27, 9) < timedelta(seconds=60)
    assert 0.05 * 3600 * 0.99 <= (after - before).total_seconds() <= real * 3600


def test_sleep_until_returns_when_the_fake_time_arrives():
    clock = ScaledClock(ny(2026, 11, 27, 9), 36_000)
    target = clock.now() + timedelta(hours=1)
    started = time.monotonic()
    assert asyncio.run(clock.sleep_until(target)) is True
    assert 0.09 <= time.monotonic() - started < 1.0
    assert clock.now() >= target


def test_sleep_until_returns_early_when_stopped():
    async def stopped_after(seconds: float) -> tuple[bool, float]:
        stop = asyncio.Event()
        asyncio.get_running_loop().call_later(seconds, stop.set)
        started = time.monotonic()
        arrived = await ScaledClock(ny(2026, 11, 27, 9)).sleep_until(ny(2026, 11, 27, 10), stop)
        return arrived, time.monotonic() - started

    arrived, waited = asyncio.run(stopped_after(0.02))
    assert arrived is False and waited < 1.0
    stop = asyncio.Event()
    stop.set()
    assert asyncio.run(SystemClock().sleep_until(datetime.now(timezone.utc) + timedelta(hours=1), stop)) is False


def test_the_past_has_already_arrived():
    assert asyncio.run(SystemClock().sleep_until(datetime.now(timezone.utc) - timedelta(seconds=1))) is True


def test_clock_from_spec():
    assert isinstance(clock_from_spec(""), SystemClock)
    assert isinstance(clock_from_spec("  "), SystemClock)
    plain = clock_from_spec("2026-11-26T09:25:00-05:00")
    assert isinstance(plain, ScaledClock) and plain.speed == 1.0
    assert plain.start == datetime(2026, 11, 26, 14, 25, tzinfo=timezone.utc)
    fast = clock_from_spec("2026-11-26T09:25:00-05:00*3600")
    assert isinstance(fast, ScaledClock) and fast.speed == 3600.0


@pytest.mark.parametrize("spec", [
    "tomorrow",
    "2026-11-26T09:25:00",  # no offset: which 09:25?
    "2026-11-26T09:25:00-05:00*",
    "2026-11-26T09:25:00-05:00*fast",
    "2026-11-26T09:25:00-05:00*0",
    "2026-11-26T09:25:00-05:00*-60",
    "2026-11-26T09:25:00-05:00*nan",
    "2026-11-26T09:25:00-05:00*inf",
])
def test_a_bad_clock_spec_names_market_clock(spec: str):
    with pytest.raises(ValueError, match="MARKET_CLOCK"):
        clock_from_spec(spec)


def test_streaming_an_index_keeps_the_regular_session_open_to_1615_for_its_options():
    """SPX options trade to 16:15: from Schwab's hours and from the calendar alike; an early close moves it too."""
    extra = INDEX_OPTIONS_EXTRA
    for fetch in (simulated, None):
        index = MarketSchedule(fetch, ("regular",), regular_extra=extra)
        assert index.window_at_or_after(ny(2026, 11, 23, 16, 5)) == Window(ny(2026, 11, 23, 9, 30),
                                                                            ny(2026, 11, 23, 16, 15), ("regular",))
        assert index.window_at_or_after(ny(2026, 11, 27, 12)).end == ny(2026, 11, 27, 13, 15), "an early close"
    assert MarketSchedule(None, ALL, regular_extra=extra).window_at_or_after(ny(2026, 11, 23, 12)).end == \
        ny(2026, 11, 23, 20), "post-market already runs past it"


def test_futures_are_streamed_over_cmes_sessions_with_the_daily_break_and_with_the_stocks_day():
    futures = FuturesSchedule()
    assert futures.window_at_or_after(ny(2026, 12, 5, 12)) == Window(ny(2026, 12, 6, 18), ny(2026, 12, 7, 17),
                                                                     ("futures",)), "Sunday evening opens the week"
    assert futures.window_at_or_after(ny(2026, 12, 7, 17, 30)).start == ny(2026, 12, 7, 18), "the daily break"
    assert futures.window_at_or_after(ny(2026, 12, 11, 17)).start == ny(2026, 12, 13, 18), "Friday 17:00 to Sunday"
    both = CombinedSchedule([MarketSchedule(None, ALL), futures])
    wake, window = both.plan(ny(2026, 12, 7, 19, 30), LEAD)
    assert wake is None and (window.start, window.end) == (ny(2026, 12, 7, 7), ny(2026, 12, 11, 20)), \
        "with extended hours, post-market (to 20:00) bridges every daily break: one stretch to Friday's 20:00"
    regular = CombinedSchedule([MarketSchedule(None, ("regular",)), futures])
    assert regular.window_at_or_after(ny(2026, 12, 7, 17, 10)) == Window(
        ny(2026, 12, 7, 18), ny(2026, 12, 8, 17), ("futures", "regular")), "the break is a break with regular only"
