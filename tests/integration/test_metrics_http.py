"""The metrics actor's HTTP side: exposition and health from samples (pure), then the server in-process."""

import json
import time
import urllib.error
import urllib.request

import msgspec
import psycopg
import pytest
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from common import config as configuration
from common.config import ACTORS
from common.observe.exposition import Board, Snapshot, SnapshotCollector, health
from common.observe.status_server import StatusServer
from common.transport.messages import MetricSample, StorageBudget, StreamLag
from tests.helpers.harness import free_port

S = 1_000_000_000
STALE = 3 * S


def sample(actor="writer", ts=1 * S, records=0, batches=0, processing_ms=0, status="running", **fields):
    return msgspec.structs.replace(
        MetricSample(actor, ts, status, records, records // 2, batches, 5, processing_ms * 1_000_000, 0, 0), **fields)


def exposition(snapshot: Snapshot, now_ns: int) -> dict[tuple[str, tuple], float]:
    """{(sample name, sorted labels): value} from the Prometheus text, parsed as a scraper would."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(SnapshotCollector(lambda: snapshot, STALE, lambda: now_ns))
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for family in text_string_to_metric_families(generate_latest(registry).decode()) for s in family.samples}


def test_rates_are_over_the_last_sample_interval():
    board = Board()
    board.observe(sample(ts=1 * S, records=100, batches=10, processing_ms=50))
    board.observe(sample(ts=3 * S, records=300, batches=30, processing_ms=250))
    board.observe(sample(ts=2 * S, records=999))  # late: older than what is held
    (view,) = board.snapshot(()).actors
    assert (view.records_in_per_s, view.records_out_per_s) == (100.0, 50.0)
    assert view.batch_latency_s == pytest.approx(0.010)


def test_a_restart_has_no_rate_until_its_next_sample():
    board = Board()
    board.observe(sample(ts=1 * S, records=500, batches=5, epoch=1))
    board.observe(sample(ts=2 * S, records=10, batches=1, epoch=2))
    (view,) = board.snapshot(()).actors
    assert (view.records_in_per_s, view.batch_latency_s) == (None, None)


def test_prometheus_families_from_samples():
    board = Board()
    board.observe(sample("ingest", ts=1 * S, records=10, batches=1, reconnects={"stall": 1}))
    board.observe(sample("ingest", ts=2 * S, records=70, batches=3, processing_ms=40, journal_bytes=4096,
                         rss_bytes=50_000_000, errors=2, gaps=1, reconnects={"stall": 2, "closed": 1}))
    board.observe(sample("writer", ts=1 * S, status="waiting_for_database"))
    lag = StreamLag(2 * S, "ingest/trade/SPY", 7, 90, 80, 10, 1.5)
    got = exposition(board.snapshot([lag]), now_ns=2 * S + S // 2)

    ingest = (("actor", "ingest"),)
    assert got["streaming_records_total", (("actor", "ingest"), ("direction", "in"))] == 70
    assert got["streaming_records_total", (("actor", "ingest"), ("direction", "out"))] == 35
    assert got["streaming_records_per_second", (("actor", "ingest"), ("direction", "in"))] == 60
    assert got["streaming_batch_latency_seconds", ingest] == pytest.approx(0.020)
    assert got["streaming_processing_seconds_total", ingest] == pytest.approx(0.040)
    assert got["streaming_reconnects_total", (("actor", "ingest"), ("cause", "closed"))] == 1
    assert got["streaming_reconnects_total", (("actor", "ingest"), ("cause", "stall"))] == 2
    assert (got["streaming_errors_total", ingest], got["streaming_gaps_total", ingest]) == (2, 1)
    assert got["streaming_journal_bytes", ingest] == 4096
    assert got["streaming_resident_memory_bytes", ingest] == 50_000_000
    assert got["streaming_last_sample_age_seconds", ingest] == 0.5
    assert got["streaming_actor_up", ingest] == 1
    assert got["streaming_actor_status", (("actor", "writer"), ("status", "waiting_for_database"))] == 1
    assert got["streaming_actor_up", (("actor", "writer"),)] == 0
    assert got["streaming_stream_lag_records", (("stream", "ingest/trade/SPY"),)] == 10
    assert got["streaming_stream_lag_seconds", (("stream", "ingest/trade/SPY"),)] == 1.5
    assert ("streaming_records_per_second", (("actor", "writer"), ("direction", "in"))) not in got, "one sample: no rate"


def test_a_silent_actor_is_stale_and_down():
    board = Board()
    board.observe(sample("ingest", ts=1 * S))
    got = exposition(board.snapshot(()), now_ns=1 * S + STALE + 1)
    assert got["streaming_actor_status", (("actor", "ingest"), ("status", "stale"))] == 1
    assert got["streaming_actor_up", (("actor", "ingest"),)] == 0


def running_board(ts=10 * S, **statuses):
    board = Board()
    for name in ACTORS:
        board.observe(sample(name, ts=ts, status=statuses.get(name, "running")))
    return board


def test_health_is_ok_when_every_actor_runs_and_sampled_lately():
    body = health(running_board().snapshot(()), ACTORS, now_ns=11 * S, stale_after_ns=STALE)
    assert body["status"] == "ok"
    assert set(body["actors"]) == set(ACTORS)
    assert body["actors"]["writer"]["status"] == "running" and body["actors"]["writer"]["last_sample_age_s"] == 1.0


@pytest.mark.parametrize("board, now, culprit, status", [
    (running_board(ingest="token_expired"), 11 * S, "ingest", "token_expired"),
    (running_board(), 10 * S + STALE + 1, "metrics", "stale"),
    (Board(), 11 * S, "writer", "missing"),
])
def test_health_is_degraded_by_any_actor(board, now, culprit, status):
    body = health(board.snapshot(()), ACTORS, now_ns=now, stale_after_ns=STALE)
    assert body["status"] == "degraded"
    assert body["actors"][culprit]["status"] == status


# The server in-process, on a free port, against a migrated database.

@pytest.fixture
def server(migrated_url, tmp_path):
    config = configuration.load({"STREAMING_VAR": str(tmp_path), "DATABASE_URL": migrated_url,
                                 "STREAM_SOURCE": "simulator", "STREAM_TICKERS": "SPY,QQQ",
                                 "METRICS_HTTP_PORT": str(free_port())})
    running = StatusServer(config, STALE).start()
    try:
        yield running
    finally:
        running.close()


def get(server, path):
    """(status, content type, body) of a GET, whatever the status."""
    host, port = server.server_address[:2]
    try:
        with urllib.request.urlopen(f"http://{host}:{port}{path}", timeout=10) as response:
            return response.status, response.headers["Content-Type"], response.read()
    except urllib.error.HTTPError as error:
        return error.code, error.headers["Content-Type"], error.read()


def test_server_answers_metrics_and_health_from_the_current_snapshot(server):
    assert json.loads(get(server, "/healthz")[2])["status"] == "degraded", "nothing heard yet"
    server.snapshot = running_board(ts=time.time_ns()).snapshot(())
    status, kind, body = get(server, "/healthz")
    assert (status, kind, json.loads(body)["status"]) == (200, "application/json", "ok")
    status, kind, body = get(server, "/metrics")
    assert status == 200 and kind.startswith("text/plain")
    names = {f.name for f in text_string_to_metric_families(body.decode())}
    assert {"streaming_records", "streaming_actor_up", "streaming_resident_memory_bytes"} <= names
    assert get(server, "/nowhere")[0] == 404


def test_series_joins_prices_and_indicators_oldest_first(server, migrated_url):
    """The latest trades of the last week (a trade older than that is not looked for: status_server.SERIES_DAYS)."""
    base = (int(time.time()) - 3600) * 1000  # an hour ago, in today's or yesterday's partitions
    with psycopg.connect(migrated_url, autocommit=True) as conn:
        for ms, volume, price, sma9, vwap in ((base + 1000, 10, 417.09, None, 417.0),
                                              (base + 2000, 20, 417.1, 417.05, 417.02),
                                              (base + 2000, 25, 417.11, 417.06, 417.03),
                                              (base - 8 * 86_400_000, 5, 416.0, 416.0, 416.0)):
            conn.execute("SELECT create_partitions((to_timestamp(%s / 1000.0) AT TIME ZONE 'America/New_York')::date,"
                         " (to_timestamp(%s / 1000.0) AT TIME ZONE 'America/New_York')::date)", (ms, ms))
            conn.execute("INSERT INTO equity_data (ticker, timestamp, price, volume, day_volume)"
                         " VALUES ('SPY', to_timestamp(%s / 1000.0), %s, 1, %s)", (ms, price, volume))
            conn.execute("INSERT INTO indicators (ticker, timestamp, price, sma9, vwap, day_volume)"
                         " VALUES ('SPY', to_timestamp(%s / 1000.0), %s, %s, %s, %s)", (ms, price, sma9, vwap, volume))
        conn.execute("INSERT INTO equity_data (ticker, timestamp, price, volume, day_volume)"
                     " VALUES ('SPY', to_timestamp(%s / 1000.0), 418, 1, 30)", (base + 3000,))  # no indicators yet
    status, _, body = get(server, "/api/series?ticker=spy&limit=2")
    assert status == 200
    assert json.loads(body) == {"ticker": "SPY", "points": [[base + 2000, 20, 417.1, 417.05, 417.02],
                                                            [base + 2000, 25, 417.11, 417.06, 417.03]]}
    points = json.loads(get(server, "/api/series?ticker=SPY")[2])["points"]
    assert points[0] == [base + 1000, 10, 417.09, None, 417.0] and len(points) == 3, "a week-old trade is not read"
    assert get(server, "/api/series?ticker=IBM")[0] == 404
    assert get(server, "/api/series?ticker=SPY&limit=0")[0] == 400
    assert get(server, "/api/series?ticker=SPY&limit=%C2%B2")[0] == 400, "a digit, but not a number"


#: Minute bars of SPY up to 15:59 New York on 2025-11-24 (20:59 UTC), one at 09:31 that day, one the day before.
CLOSE_MS = 1_764_017_940_000
MINUTE = 60_000


def test_bars_over_a_range_carry_the_indicators_as_of_their_close_and_where_they_came_from(server, migrated_url):
    starts = [CLOSE_MS - k * MINUTE for k in (30, 20, 14, 1, 0)] + [CLOSE_MS - 388 * MINUTE,
                                                                    CLOSE_MS - 1440 * MINUTE]
    with psycopg.connect(migrated_url, autocommit=True) as conn:
        conn.execute("SELECT create_partitions('2025-11-23', '2025-11-24')")
        for n, start in enumerate(starts):
            conn.execute("INSERT INTO equity_bars (ticker, timestamp, open, high, low, close, volume, source)"
                         " VALUES ('SPY', to_timestamp(%s / 1000.0), 417, 418, 416, 417.5, 100, %s)",
                         (start, "repaired" if n == 3 else "stream"))
        for ms, volume, sma9, vwap in ((CLOSE_MS - MINUTE + 10_000, 10, 417.2, 417.1),
                                       (CLOSE_MS - MINUTE + 50_000, 20, 417.3, 417.15),  # the bar's last trade
                                       (CLOSE_MS + 5_000, 30, 417.4, 417.2)):
            conn.execute("INSERT INTO indicators (ticker, timestamp, price, sma9, vwap, day_volume)"
                         " VALUES ('SPY', to_timestamp(%s / 1000.0), 417.5, %s, %s, %s)", (ms, sma9, vwap, volume))
    status, _, body = get(server, "/api/bars?ticker=spy&range=15m")
    answer = json.loads(body)
    assert (status, answer["range"]) == (200, "15m")
    assert [bar[0] for bar in answer["bars"]] == [CLOSE_MS - 14 * MINUTE, CLOSE_MS - MINUTE, CLOSE_MS]
    assert answer["bars"][1] == [CLOSE_MS - MINUTE, 417.0, 418.0, 416.0, 417.5, 100.0, "repaired", 417.3, 417.15]
    assert answer["bars"][2][7:] == [417.4, 417.2] and answer["bars"][0][7:] == [None, None]
    assert len(json.loads(get(server, "/api/bars?range=1h")[2])["bars"]) == 5
    assert len(json.loads(get(server, "/api/bars?range=session")[2])["bars"]) == 6, "09:31 on, not the day before"
    assert json.loads(get(server, "/api/bars?ticker=QQQ")[2])["bars"] == []
    assert get(server, "/api/bars?range=week")[0] == 400
    assert get(server, "/api/bars?ticker=IBM")[0] == 404


def test_series_survives_the_database_going_away(server, migrated_url):
    assert get(server, "/api/series?ticker=SPY")[0] == 200
    with psycopg.connect(migrated_url, autocommit=True) as conn:
        conn.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
                     " WHERE application_name = 'streaming-status'")
    assert get(server, "/api/series?ticker=SPY")[:2] == (503, "application/json"), "the broken connection is dropped"
    assert get(server, "/api/series?ticker=SPY")[0] == 200, "and the next request connects again"


def test_status_page_knows_the_tickers(server):
    status, kind, body = get(server, "/")
    assert (status, kind) == (200, "text/html; charset=utf-8")
    assert b'const TICKERS = ["SPY", "QQQ"];' in body


def test_the_storage_budget_the_writer_measured_is_a_gauge_and_degrades_health_past_ok():
    board = running_board()
    board.observe(sample("writer", ts=11 * S, storage=StorageBudget(480 << 20, 500 << 20, 18 << 20, 4.5, "warn")))
    got = exposition(board.snapshot(()), now_ns=11 * S)
    assert got["streaming_database_bytes", ()] == 480 << 20
    assert got["streaming_storage_budget_bytes", ()] == 500 << 20
    assert got["streaming_storage_budget_days_left", ()] == 4.5
    assert got["streaming_storage_budget_level", (("level", "warn"),)] == 1
    body = health(board.snapshot(()), ACTORS, now_ns=11 * S, stale_after_ns=STALE)
    assert body["status"] == "degraded" and body["storage"] == {
        "level": "warn", "database_bytes": 480 << 20, "budget_bytes": 500 << 20, "bytes_per_day": 18 << 20,
        "days_left": 4.5}
    assert health(running_board().snapshot(()), ACTORS, now_ns=11 * S, stale_after_ns=STALE)["storage"] is None
