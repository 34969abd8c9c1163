"""The status page's data behind STATUS_PAGE_TOKEN, and its bars query at a year of partitions (issue 25, items 8
and 3): the server in-process against a migrated database, as the metrics actor runs it."""

from __future__ import annotations

import base64
import json
from datetime import timedelta
import urllib.error
import urllib.request

import psycopg
import pytest

from common import config as configuration
from common.observe.status_server import SERIES_DAYS, StatusServer, read_bars, read_series
from common.redact import REDACT
from tests.helpers.harness import free_port
from tests.helpers.partitions import year_of_partitions

TOKEN = "Zq8status-page-token-4567"
STALE = 3_000_000_000
#: Relation locks the bars query holds with a year of partitions in equity_bars (by month) and indicators (by day):
#: every month of bars and the range's days of indicators, with their indexes, the parents' and the catalog's; 65
#: when measured. Unbounded,
#: with equity_bars by the day too, the same query took 3,125 here (390 partitions of equity_bars, each also
#: locking its indexes, and every indicators one).
MOST_LOCKS = 70
#: Relation locks held, the query's own on pg_locks left out.
LOCKS_HELD = ("SELECT count(*) FILTER (WHERE relation <> 'pg_catalog.pg_locks'::regclass),"
              " count(*) FILTER (WHERE relation IN (SELECT inhrelid FROM pg_inherits"
              "                                     WHERE inhparent = 'public.equity_bars'::regclass))"
              " FROM pg_locks WHERE pid = pg_backend_pid() AND locktype = 'relation'")


@pytest.fixture
def server(migrated_url, tmp_path):
    config = configuration.load({"STREAMING_VAR": str(tmp_path), "DATABASE_URL": migrated_url,
                                 "STREAM_SOURCE": "simulator", "STREAM_TICKERS": "SPY,QQQ",
                                 "METRICS_HTTP_PORT": str(free_port()), "STATUS_PAGE_TOKEN": TOKEN})
    running = StatusServer(config, STALE).start()
    try:
        yield running
    finally:
        running.close()


def get(server: StatusServer, path: str, authorization: str | None = None) -> tuple[int, dict[str, str], bytes]:
    """(status, headers, body) of a GET, whatever the status."""
    host, port = server.server_address[:2]
    request = urllib.request.Request(f"http://{host}:{port}{path}",
                                     headers={"Authorization": authorization} if authorization else {})
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, dict(response.headers), response.read()
    except urllib.error.HTTPError as error:
        return error.code, dict(error.headers), error.read()


@pytest.mark.parametrize("path", ["/", "/api/series?ticker=SPY", "/api/bars?ticker=SPY&range=1h", "/metrics"])
def test_the_page_its_data_and_metrics_answer_only_the_token(server, path):
    status, headers, body = get(server, path)
    assert status == 401 and headers["WWW-Authenticate"].startswith("Basic "), "a browser asks for it"
    assert "STATUS_PAGE_TOKEN" in json.loads(body)["error"]
    assert get(server, path, f"Bearer {TOKEN[:-1]}x")[0] == 401
    assert get(server, path, "Basic " + base64.b64encode(f"{TOKEN}:".encode()).decode())[0] == 401, "not the user"
    assert get(server, path, f"Bearer {TOKEN}")[0] == 200
    assert get(server, path, "Basic " + base64.b64encode(f"me:{TOKEN}".encode()).decode())[0] == 200


def test_healthz_stays_open_for_a_healthcheck_and_the_token_never_reaches_a_log_line(server):
    status, _, body = get(server, "/healthz")
    assert status == 503 and json.loads(body)["status"] == "degraded", "answered: nothing heard yet"
    assert REDACT(f"offered {TOKEN}") == "offered ***"


def test_the_bars_query_locks_a_partition_a_month_of_bars_and_a_days_of_indicators_at_a_year_of_them(migrated_url):
    """/api/bars polls every 5 s: with a year of daily partitions its newest-bar lookup planned and locked every one
    of them (1,536 locks, from a lock table of 3,840 on a Supabase nano). equity_bars, kept for ever, now has a
    partition a month (sql/031): the newest bar is found in them, and the bars and their indicator values are read
    in constant bounds around it, so of indicators' daily partitions only those few are locked."""
    with psycopg.connect(migrated_url, autocommit=True) as conn:
        year_of_partitions(conn, *("equity_bars", "indicators"))
        for ticker, first, last in (("SPY", 1, 90), ("IWM", 3 * 1440, 3 * 1440 + 30), ("QQQ", 30 * 1440, 30 * 1440)):
            conn.execute("INSERT INTO equity_bars (ticker, timestamp, open, high, low, close, volume, source)"
                         " SELECT %s, date_trunc('minute', now()) - m * interval '1 minute', 417, 418, 416, 417.5, 100,"
                         " 'stream' FROM generate_series(%s::int, %s::int) AS m", (ticker, first, last))
        partitions = conn.execute("SELECT count(*) FROM pg_inherits"
                                  " WHERE inhparent = 'public.equity_bars'::regclass").fetchone()[0]
    assert 12 <= partitions <= 14, "a year of bars by the month"

    with psycopg.connect(migrated_url) as conn:  # one transaction: every lock taken is still held at the end
        for _ in range(12):  # past psycopg's prepare threshold (5) and PostgreSQL's custom plans (5)
            hour = read_bars(conn, "SPY", timedelta(hours=1))
        locks, bar_partitions = conn.execute(LOCKS_HELD).fetchone()
        assert len(hour) == 60 and hour[-1][6] == "stream"
        assert len(read_bars(conn, "IWM", None)) > 0, "a long weekend's last bars are still shown"
        assert len(read_bars(conn, "QQQ", None)) == 1, "a month-old last bar is still found"
    assert bar_partitions <= 14 and locks <= MOST_LOCKS, (bar_partitions, locks)  # a year of months


def test_the_series_query_locks_only_the_last_weeks_partitions_at_a_year_of_them(migrated_url):
    """/api/series polls too: unbounded, its join planned every daily partition of equity_data and indicators."""
    with psycopg.connect(migrated_url, autocommit=True) as conn:
        year_of_partitions(conn, *("equity_data", "indicators"))
        now = conn.execute("SELECT now()").fetchone()[0]
        for table, extra in (("equity_data", "price, volume"), ("indicators", "price, vwap")):
            conn.execute(f"INSERT INTO {table} (ticker, timestamp, day_volume, {extra})"
                         " SELECT 'SPY', %s - s * interval '1 second', 1000 - s, 417, 100"
                         " FROM generate_series(1, 50) AS s", (now,))
    with psycopg.connect(migrated_url) as conn:  # one transaction: every lock taken is still held at the end
        for _ in range(12):  # past psycopg's prepare threshold (5) and PostgreSQL's custom plans (5)
            rows = read_series(conn, "SPY", 20, now)
        held = conn.execute("SELECT count(*) FROM pg_locks l JOIN pg_inherits i ON i.inhrelid = l.relation"
                            " WHERE l.pid = pg_backend_pid() AND i.inhparent IN"
                            " ('public.equity_data'::regclass, 'public.indicators'::regclass)").fetchone()[0]
    assert len(rows) == 20 and rows[0][1] == 999, "the newest trades, newest first"
    assert held <= 2 * (SERIES_DAYS + 3), held  # the week's days, today's and tomorrow's, of each table
