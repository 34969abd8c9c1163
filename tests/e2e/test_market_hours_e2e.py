"""Session hours through the whole pipeline, on an injected clock that crosses Thanksgiving in seconds.

The clock starts on Wednesday 2026-11-25 at 15:58 New York time and runs
6000 times faster than real time. ingest must log out at the 16:00 close,
sleep through Thanksgiving (a holiday) to Friday's 09:25 (five minutes
before the open), stream Friday's early-closing session until 13:00, and
log out until Monday. While it sleeps every actor idles.
"""

from __future__ import annotations

import json
import time

import psutil
import pytest

from tests.helpers.harness import ACTOR_PROGRAMS, Pipeline, wait_for

SPEED = 6000


@pytest.fixture(scope="module")
def pipeline():
    running = Pipeline("SPY", rate=40, MARKET_HOURS="exchange", MARKET_CLOCK=f"2026-11-25T15:58:00-05:00*{SPEED}",
                       MARKET_LEAD="5m").start()
    try:
        yield running
    finally:
        running.shutdown()


def ingest_lines(pipeline: Pipeline, msg: str) -> list[dict]:
    return [line for line in map(json.loads, pipeline.log("ingest").splitlines()) if line["msg"] == msg]


def test_sleeps_through_a_holiday_and_stops_at_an_early_close(pipeline):
    closed = wait_for(lambda: ingest_lines(pipeline, "market closed: logged out until shortly before the session"),
                      60, "the Wednesday close")
    first = closed[0]
    assert first["wake_at"] == "2026-11-27T14:25:00+00:00", "Thanksgiving skipped; 09:25 New York on Friday"
    assert first["session_start"] == "2026-11-27T14:30:00+00:00"
    assert first["session_end"] == "2026-11-27T18:00:00+00:00", "Friday after Thanksgiving closes at 13:00"

    # Asleep: logged out at Schwab, and every actor close to idle.
    assert wait_for(lambda: pipeline.query(
        "SELECT service_status FROM streaming_metrics WHERE actor = 'ingest' ORDER BY timestamp DESC LIMIT 1")
        == [("market_closed",)], 15, "market_closed in streaming_metrics")
    processes = {name: psutil.Process(pipeline.pid(name)) for name in ACTOR_PROGRAMS}
    before = {name: sum(p.cpu_times()[:2]) for name, p in processes.items()}
    started = time.monotonic()
    time.sleep(5)  # the measured stretch of idling
    elapsed = time.monotonic() - started
    used = {name: sum(p.cpu_times()[:2]) - before[name] for name, p in processes.items()}
    assert sum(used.values()) / elapsed < 0.05, f"CPU seconds per second while closed: {used}"

    # Friday: logged in again, streamed, and out again at the early close until Monday.
    after_friday = wait_for(lambda: len(ingest_lines(pipeline, "market closed: logged out until shortly before "
                                                                "the session")) >= 2 and
                            ingest_lines(pipeline, "market closed: logged out until shortly before the session")[1],
                            120, "Friday's early close")
    assert after_friday["wake_at"] == "2026-11-30T14:25:00+00:00", "the weekend skipped"
    assert pipeline.count("equity_data") > 0, "Friday's session was streamed"
    logins = ingest_lines(pipeline, "logging in")
    assert len(logins) == 2 and logins[1]["session_end"] == "2026-11-27T18:00:00+00:00"
