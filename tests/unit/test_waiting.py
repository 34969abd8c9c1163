"""Waiting without work, on fake time: for a number of seconds, for a moment, and for the next session."""

from __future__ import annotations

import asyncio
import datetime

from common.feed.market_hours import MarketSchedule, Window
from common.feed.waiting import Idle, SessionWait
from common.observe.stats import ActorStats
from tests.helpers.fake_stream import (
    MONDAY,
    Duties,
    FakeTime,
    LogLines,
    new_york,
    weekday_hours,
)

LEAD = 300.0


def idle(time: FakeTime, duties: Duties) -> Idle:
    return Idle(duties.stopping, duties.tick, time, time.monotonic, time.sleep)


def test_a_wait_wakes_every_second_to_tick():
    time, duties = FakeTime(new_york(MONDAY, 12)), Duties()
    asyncio.run(idle(time, duties).wait(2.5))
    assert time.slept == [1.0, 1.0, 0.5] and duties.ticks == 3


def test_a_stop_ends_a_wait_at_the_next_wake():
    time, duties = FakeTime(new_york(MONDAY, 12)), Duties()
    duties.on_tick = duties.stop
    asyncio.run(idle(time, duties).wait(60.0))
    assert time.slept == [1.0]


def test_a_wait_until_a_moment_ticks_at_each_wake_and_a_stop_ends_it():
    time, duties = FakeTime(new_york(MONDAY, 12), longest_nap=3600.0), Duties()
    asyncio.run(idle(time, duties).until(new_york(MONDAY, 15)))
    assert time.now() == new_york(MONDAY, 15) and duties.ticks == 3
    duties.on_tick = duties.stop
    asyncio.run(idle(time, duties).until(new_york(MONDAY, 20)))
    assert time.now() == new_york(MONDAY, 16)


def session_wait(time: FakeTime, duties: Duties, log: LogLines, stats: ActorStats) -> SessionWait:
    return SessionWait(MarketSchedule(weekday_hours, ("regular",)).plan, LEAD, idle(time, duties), stats, log.logger)


def test_within_a_session_it_streams_at_once():
    time, duties, log, stats = FakeTime(new_york(MONDAY, 9, 27)), Duties(), LogLines("test.waiting"), \
        ActorStats("ingest", interval=0)
    window = asyncio.run(session_wait(time, duties, log, stats).next_window())
    assert window == Window(new_york(MONDAY, 9, 30), new_york(MONDAY, 16), ("regular",))
    assert time.elapsed == 0 and log.records == [] and stats.status == "starting"


def test_when_closed_it_sleeps_logged_out_until_the_lead_before_the_next_session():
    saturday = new_york(MONDAY + datetime.timedelta(days=5), 10)
    time, duties, log, stats = FakeTime(saturday), Duties(), LogLines("test.waiting"), ActorStats("ingest", interval=0)
    window = asyncio.run(session_wait(time, duties, log, stats).next_window())
    monday = MONDAY + datetime.timedelta(days=7)
    assert window is not None and window.start == new_york(monday, 9, 30)
    assert time.now() == new_york(monday, 9, 25) and stats.status == "market_closed"
    [said] = log.records
    assert (said.wake_at, said.session_start) == ("2026-03-09T13:25:00+00:00", "2026-03-09T13:30:00+00:00")


def test_a_stop_while_closed_gives_no_window():
    time, duties = FakeTime(new_york(MONDAY, 17), longest_nap=60.0), Duties()
    duties.on_tick = duties.stop
    stats = ActorStats("ingest", interval=0)
    assert asyncio.run(session_wait(time, duties, LogLines("test.waiting"), stats).next_window()) is None
    assert time.now() == new_york(MONDAY, 17, 1)
