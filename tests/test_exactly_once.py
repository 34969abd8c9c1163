"""Nothing lost, nothing doubled: the real processes under supervisord, with faults."""

import os
import signal
import threading
import time
from decimal import Decimal

import psycopg
import pytest

from tests.harness import Pipeline, wait_for

pytestmark = pytest.mark.e2e
TICKERS = ("SPY", "QQQ")


def sent_trades(pipeline: Pipeline) -> list[tuple]:
    report = pipeline.report()
    return sorted(
        (symbol, t["trade_time_ms"], t["day_volume"], Decimal(str(t["price"])))
        for symbol in TICKERS
        for t in report["trades"][symbol]
    )


def stored_trades(pipeline: Pipeline) -> list[tuple]:
    rows = pipeline.query(
        "SELECT ticker, (extract(epoch FROM timestamp) * 1000)::bigint, day_volume, price FROM equity_data ORDER BY 1, 2, 3"
    )
    return [tuple(row) for row in rows]


def stop_and_reopen(pipeline: Pipeline) -> None:
    """`stop all`, then Postgres alone again so the tables can be read."""
    pipeline.stop_all()
    pipeline.ctl("start", "embedded:postgres")
    wait_for(lambda: pipeline.count("equity_data"), 30, "Postgres to come back")


def assert_exactly_once(pipeline: Pipeline, indicators_too: bool = True) -> None:
    sent, stored = sent_trades(pipeline), stored_trades(pipeline)
    assert len(sent) > 50, "the simulator should have traded for a while"
    assert stored == sent, f"{len(sent)} sent, {len(stored)} stored; missing {sorted(set(sent) - set(stored))[:5]}"
    if indicators_too:
        (indicators,) = pipeline.query("SELECT count(*) FROM indicators")[0]
        assert indicators == len(sent), "one indicator row per trade, none twice"
    in_order = pipeline.query(
        "SELECT ticker, bool_and(day_volume > prev) FROM (SELECT ticker, day_volume,"
        " lag(day_volume, 1, -1::bigint) OVER (PARTITION BY ticker ORDER BY id) AS prev FROM equity_data) t GROUP BY 1"
    )
    assert all(ok for _, ok in in_order), f"rows arrived out of order per symbol: {in_order}"


@pytest.fixture
def pipeline(request):
    settings = getattr(request, "param", {})
    running = Pipeline(tickers=",".join(TICKERS), rate=200, **settings).start()
    try:
        yield running
    finally:
        running.shutdown()


def test_writer_killed_mid_batch_again_and_again(pipeline):
    wait_for(lambda: pipeline.count("equity_data") > 20, 30, "ticks flowing")
    for _ in range(4):
        writer = pipeline.pid("writer")
        before = pipeline.count("equity_data")
        wait_for(lambda: pipeline.count("equity_data") > before + 20, 30, "the writer to be mid-stream")
        os.kill(writer, signal.SIGKILL)
        wait_for(lambda: pipeline.states().get("writer") == "RUNNING" and pipeline.pid("writer") != writer,
                 30, "supervisord to restart the writer")
    after = pipeline.count("equity_data")
    wait_for(lambda: pipeline.count("equity_data") > after + 20, 30, "the restarted writer to catch up")
    stop_and_reopen(pipeline)
    assert_exactly_once(pipeline)
    assert '"replayed"' in pipeline.log("writer")


def test_postgres_away_for_a_minute(pipeline):
    wait_for(lambda: pipeline.count("equity_data") > 20, 30, "ticks flowing")
    ingest = pipeline.pid("ingest")
    admin = psycopg.connect(pipeline.database_url, autocommit=True)
    stopping = threading.Thread(target=pipeline.ctl, args=("stop", "embedded:postgres"))
    stopping.start()
    # Smart shutdown waits for sessions: end them (the writer's too), from the one already open.
    wait_for(lambda: admin.execute("SELECT count(*) FROM pg_stat_activity WHERE application_name = 'streaming-writer'")
             .fetchone()[0] > 0, 10, "the writer's session")
    admin.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE pid <> pg_backend_pid() AND backend_type = 'client backend'")
    admin.close()
    stopping.join(timeout=60)
    outage_started = time.monotonic()
    report_before = sum(len(t) for t in pipeline.report_live()["trades"].values())
    while time.monotonic() - outage_started < 60:
        time.sleep(1)  # the outage itself is the test: a fixed minute, nothing to await
    assert sum(len(t) for t in pipeline.report_live()["trades"].values()) > report_before + 100, \
        "ingest kept reading the socket while the database was away"
    pipeline.ctl("start", "embedded:postgres")
    wait_for(lambda: pipeline.count("equity_data") >= report_before + 100, 60, "the writer to catch up")
    assert pipeline.pid("ingest") == ingest, "ingest never stopped"
    stop_and_reopen(pipeline)
    assert_exactly_once(pipeline)
    assert "database unavailable; retrying" in pipeline.log("writer")


@pytest.mark.parametrize("pipeline", [{"BUS_HWM": "2", "BATCH_SIZE": "20"}], indirect=True)
def test_slow_writer_behind_a_tiny_high_water_mark(pipeline):
    wait_for(lambda: pipeline.count("equity_data") > 300, 60, "ticks flowing")
    stop_and_reopen(pipeline)
    # The indicator sits behind the same tiny high-water mark and does not yet
    # rebuild from the journal, so only the writer's own streams are checked here.
    assert_exactly_once(pipeline, indicators_too=False)
