"""`python -m actors.writer` as a real process, between a real bus and a real Postgres."""

import json
import os
import shutil
import signal
import tempfile
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

import psycopg
import pytest

from common.config import load
from common.feed.market_hours import NEW_YORK
from common.streams import journaled_kinds
from common.transport.bus import Publisher
from common.transport.messages import IndicatorValue, OptionQuote
from common.transport.tickerplant import Tickerplant
from tests.helpers.harness import wait_for
from tests.helpers.roles import writer_login
from tests.helpers.snapshots import expected_snapshots
from tests.helpers.writer_process import T0, await_writer, trade, writer_process


@pytest.fixture
def var():
    path = Path(tempfile.mkdtemp(prefix="wr", dir="/tmp"))
    yield path
    shutil.rmtree(path, ignore_errors=True)


def test_flushes_on_sigterm_and_a_duplicate_costs_nothing_else(migrated_url, var):
    env = {**os.environ, "STREAMING_VAR": str(var), "DATABASE_URL": migrated_url, "STREAM_SOURCE": "simulator",
           "BATCH_INTERVAL": "60s", "BATCH_SIZE": "100000", "HEARTBEAT_INTERVAL": "0.2s", "DEPLOYMENT": "test"}
    config = load(env)
    config.ensure_dirs()
    ingest, indicator = Publisher(config, "ingest"), Publisher(config, "indicator")
    with writer_process(env, var) as writer:
        await_writer(ingest, indicator)
        # Trades 0 and 1 share a millisecond; trade 3 arrives twice inside one frame.
        trades = [trade(i, T0 + (i if i > 1 else 0)) for i in range(40)]
        ingest.send(trades[:20])
        ingest.send(trades[20:] + [trades[3]])
        indicator.send([IndicatorValue("SPY", T0, 1000, 500.0, None, 500.0, 1)])
        ingest.close()
        indicator.close()
        with psycopg.connect(migrated_url) as connection:
            assert connection.execute("SELECT count(*) FROM equity_data").fetchone()[0] == 0, \
                "BATCH_INTERVAL is 60 s: nothing may be written before the SIGTERM"
        writer.send_signal(signal.SIGTERM)
        assert writer.wait(timeout=20) == 0

    with psycopg.connect(migrated_url) as connection:
        stored = connection.execute(
            "SELECT (extract(epoch FROM timestamp) * 1000)::bigint, day_volume, price FROM equity_data ORDER BY day_volume"
        ).fetchall()
        assert connection.execute("SELECT count(*) FROM indicators").fetchone()[0] == 1
    assert [(t, v, float(p)) for t, v, p in stored] == [(t.trade_time_ms, t.day_volume, t.price) for t in trades]
    lines = [json.loads(line) for line in (var / "writer.log").read_text().splitlines()]
    assert all(line["actor"] == "writer" for line in lines)
    assert [line["duplicates"] for line in lines if line["msg"] == "rows already stored were skipped"] == [1]


def option(strike: float, expiration: str = "2026-11-24", delta: float | None = 0.5) -> OptionQuote:
    return OptionQuote("SPY   261124C00500000", "SPY", T0, "C", strike, expiration, 1.0, 0.9, 1.1, 1.0, 10, 100,
                       20.0, delta, 0.01, -0.1, 0.05, 0.01, 500.0, 1)


def test_a_row_the_table_rejects_is_quarantined_and_the_rest_stored(migrated_url, var):
    env = {**os.environ, "STREAMING_VAR": str(var), "DATABASE_URL": migrated_url, "STREAM_SOURCE": "simulator",
           "HEARTBEAT_INTERVAL": "0.2s", "DEPLOYMENT": "test", "OPTION_STORE_INTERVAL": "0"}
    config = load(env)
    config.ensure_dirs()
    ingest = Publisher(config, "ingest")
    with writer_process(env, var) as writer:
        await_writer(ingest)
        # A strike of 1e15 overflows numeric(18,6): that quote's row can never be stored.
        ingest.send([option(500.0), option(1e15), option(505.0)])
        # Its greeks must be modelled to its expiry, which is no date: no row can be made of it.
        ingest.send([option(510.0), option(515.0, expiration="soon", delta=None)])
        with psycopg.connect(migrated_url) as connection:
            wait_for(lambda: connection.execute("SELECT count(*) FROM option_prices").fetchone()[0] == 3, 20,
                     "the three good rows")
            (seq,) = connection.execute("SELECT seq FROM stream_offsets WHERE stream = 'test/ingest/option'"
                                        ).fetchone()
        assert seq == 2, "the offset moved past the rejected row's frame: it will not block the stream"
        ingest.close()
        writer.send_signal(signal.SIGTERM)
        assert writer.wait(timeout=20) == 0
    letters = [json.loads(line) for line in (var / "data" / "dead-letter" / "writer.jsonl").read_text().splitlines()]
    reasons = {letter["row"][4]: letter["reason"] for letter in letters if letter["table"] == "option_prices"}
    assert reasons.keys() == {1e15, 515.0} and len(letters) == 2
    assert "numeric field overflow" in reasons[1e15], "the table refused it"
    assert "'soon'" in reasons[515.0], "no row could be made of it"


def contract_quote(symbol: str, strike: float, received_ns: int, bid: float) -> OptionQuote:
    return OptionQuote(symbol, "SPY", received_ns // 1_000_000, "C", strike, "2026-11-24", bid, bid, bid + 0.1,
                       bid + 0.05, 10, 100, 20.0, 0.5, 0.01, -0.1, 0.05, 0.01, 500.0, received_ns)


def stored_snapshots(url: str) -> list[tuple]:
    with psycopg.connect(url) as connection:
        return sorted(connection.execute(
            "SELECT option_symbol, (extract(epoch FROM timestamp) * 1e9)::int8, bid::float8,"
            " (extract(epoch FROM received_at) * 1e9)::int8 FROM option_prices").fetchall())


def test_option_snapshots_survive_a_sigkill_exactly_once(migrated_url, var):
    """Quotes over six minutes, the writer SIGKILLed mid-minute and started again while more are sent: one row
    per contract and minute, its last quote of the minute, as the plain recomputation says. The quotes are
    stamped an hour ahead, so that only the stream's own time closes a minute, never the clock."""
    env = {**os.environ, "STREAMING_VAR": str(var), "DATABASE_URL": migrated_url, "STREAM_SOURCE": "simulator",
           "HEARTBEAT_INTERVAL": "0.2s", "DEPLOYMENT": "test", "OPTION_STORE_INTERVAL": "1m", "BATCH_INTERVAL": "10ms"}
    config = load(env)
    config.ensure_dirs()
    ingest = Tickerplant(config, "ingest", journaled_kinds(config.opted_in))
    minute = 60_000_000_000
    start = (time.time_ns() // minute + 60) * minute
    contracts = [(f"SPY   261124C00{strike}000", float(strike)) for strike in (495, 500, 505)]
    frames = [[contract_quote(symbol, strike, start + second * 1_000_000_000 + i, 1.0 + second / 100)
               for i, (symbol, strike) in enumerate(contracts) if (second + i) % 4]
              for second in range(0, 6 * 60, 7)]
    sent: list[tuple[OptionQuote, tuple[int, int]]] = []

    def send(batch):
        for records in batch:
            seq = ingest.send(records)
            sent.extend((record, (ingest.epoch, seq)) for record in records)

    def expected() -> list[tuple]:
        return sorted((quote.symbol, interval, round(quote.bid, 6), quote.received_ns // 1000 * 1000)
                      for interval, quote in expected_snapshots(sent, minute))

    mid_minute = next(i for i, records in enumerate(frames) if records[0].received_ns >= start + 3 * minute + 20e9)
    with writer_process(env, var) as writer:
        await_writer(ingest)
        send(frames[:mid_minute])
        wait_for(lambda: len(stored_snapshots(migrated_url)) == len(expected()), 20, "three minutes of snapshots")
        assert stored_snapshots(migrated_url) == expected(), "minute 4 is open: not stored yet"
        writer.kill()
        writer.wait()
    send(frames[mid_minute:])  # journaled while the writer is away
    with writer_process(env, var) as writer:
        await_writer(ingest)
        wait_for(lambda: len(stored_snapshots(migrated_url)) == len(expected()), 20, "every closed minute")
        ingest.close()
        writer.send_signal(signal.SIGTERM)
        assert writer.wait(timeout=20) == 0
    assert stored_snapshots(migrated_url) == expected(), "minute 4 rebuilt from the journal; minute 6 still open"
    assert {interval for _, interval, _, _ in expected()} == {start + m * minute for m in range(5)}


def test_the_writer_measures_the_budget_and_starts_the_keeper_when_days_must_go(migrated_url, var):
    """A 1 MB budget and a past day of trades: within the writer's first check the day is archived and dropped,
    and the budget is recorded as health reads it."""
    day = (datetime.now(NEW_YORK) - timedelta(days=3)).replace(hour=12, minute=0, second=0, microsecond=0)
    with psycopg.connect(migrated_url, autocommit=True) as connection:
        connection.execute("SELECT create_partitions(%s, %s)", (day.date(), day.date()))
        connection.execute("INSERT INTO equity_data (ticker, timestamp, price, volume, day_volume)"
                           " SELECT 'SPY', %s + n * interval '1 second', 417.09, 100, n FROM generate_series(1, 300) n",
                           (day,))
    env = {**os.environ, "STREAMING_VAR": str(var), "DATABASE_URL": migrated_url, "STREAM_SOURCE": "simulator",
           "HEARTBEAT_INTERVAL": "0.2s", "DEPLOYMENT": "test", "STORAGE_BUDGET_MB": "1",
           "ARCHIVE_DIR": str(var / "archive")}
    with writer_process(env, var) as writer, psycopg.connect(migrated_url, autocommit=True) as connection:
        wait_for(lambda: connection.execute("SELECT count(*) FROM archive_log WHERE table_name = 'equity_data'"
                                            " AND row_count = 300").fetchone()[0] == 1, 60, "the day archived")
        wait_for(lambda: connection.execute("SELECT count(*) FROM equity_data").fetchone()[0] == 0, 30,
                 "the archived day dropped")
        level, budget_bytes = connection.execute("SELECT level, budget_bytes FROM storage_budget").fetchone()
        writer.send_signal(signal.SIGTERM)
        assert writer.wait(timeout=20) == 0
    assert (level, budget_bytes) == ("crit", 1 << 20), "the catalog alone passes a 1 MB budget"
    log = (var / "writer.log").read_text()
    assert "archiving and dropping past days" in log and '"msg":"archived and dropped"' in log


def test_the_last_minute_of_a_quiet_option_stream_is_closed_by_ingests_heartbeats(migrated_url, var):
    """Quotes of two past minutes, then nothing: the second minute closes once ingest's heartbeats, sent more than
    CLOSE_GRACE_NS after its last option frame, show it is over; the writer's own clock closes nothing."""
    env = {**os.environ, "STREAMING_VAR": str(var), "DATABASE_URL": migrated_url, "STREAM_SOURCE": "simulator",
           "HEARTBEAT_INTERVAL": "0.2s", "DEPLOYMENT": "test", "OPTION_STORE_INTERVAL": "1m", "BATCH_INTERVAL": "10ms"}
    config = load(env)
    config.ensure_dirs()
    ingest = Tickerplant(config, "ingest", journaled_kinds(config.opted_in))
    minute = 60_000_000_000
    start = (time.time_ns() // minute - 3) * minute
    quotes = [contract_quote("SPY   261124C00500000", 500.0, start + second * 1_000_000_000, 1.0 + second / 100)
              for second in (5, 50, 65, 110)]
    with writer_process(env, var) as writer:
        await_writer(ingest)
        for quote in quotes:
            ingest.send([quote])
        wait_for(lambda: len(stored_snapshots(migrated_url)) == 1, 20, "the first minute, closed by the second's quote")
        wait_for(lambda: ingest.tick() is not None and len(stored_snapshots(migrated_url)) == 2, 30,
                 "the second minute, closed by ingest's heartbeats")
        ingest.close()
        writer.send_signal(signal.SIGTERM)
        assert writer.wait(timeout=20) == 0
    assert [(stamp, bid) for _, stamp, bid, _ in stored_snapshots(migrated_url)] == [
        (start, round(quotes[1].bid, 6)), (start + minute, round(quotes[3].bid, 6))]


def test_partition_upkeep_that_fails_is_a_warning_and_storing_goes_on(migrated_url, var):
    """create_partitions refused (here: its grant taken back) once made the writer loop on "database unavailable"
    although the day's partition was there; now it says so and stores."""
    day = datetime.fromtimestamp(T0 / 1000, NEW_YORK).date()
    with psycopg.connect(migrated_url, autocommit=True) as connection:
        connection.execute("SELECT create_partitions(%s, %s)", (day, day))
        connection.execute("REVOKE EXECUTE ON FUNCTION create_partitions(date, date, text) FROM streaming_writer")
    env = {**os.environ, "STREAMING_VAR": str(var), "DATABASE_URL": writer_login(migrated_url),
           "STREAM_SOURCE": "simulator", "HEARTBEAT_INTERVAL": "0.2s", "DEPLOYMENT": "test", "BATCH_INTERVAL": "0.1s"}
    config = load(env)
    config.ensure_dirs()
    ingest = Publisher(config, "ingest")
    with writer_process(env, var) as writer, psycopg.connect(migrated_url) as connection:
        await_writer(ingest)
        ingest.send([trade(i, T0 + i) for i in range(5)])
        wait_for(lambda: connection.execute("SELECT count(*) FROM equity_data").fetchone()[0] == 5, 20, "stored")
        ingest.close()
        writer.send_signal(signal.SIGTERM)
        assert writer.wait(timeout=20) == 0
    lines = [json.loads(line) for line in (var / "writer.log").read_text().splitlines()]
    warned = [line for line in lines if line["msg"].startswith("daily partitions not made yet")]
    assert warned and "permission denied for function create_partitions" in warned[0]["reason"]
    assert not [line for line in lines if line["msg"].startswith("database unavailable")]


def test_create_partitions_bounds_do_not_depend_on_the_callers_session(migrated_url):
    """A 'SQL, DMY' session in Asia/Kolkata made a day 3.5 hours off ('IST' read back as Israel's), and every later
    call failed with "would overlap"."""
    day = datetime.now(NEW_YORK).date() + timedelta(days=20)
    with psycopg.connect(migrated_url, autocommit=True) as connection:
        connection.execute("SET DateStyle = 'SQL, DMY'")
        connection.execute("SET TimeZone = 'Asia/Kolkata'")
        connection.execute("SELECT create_partitions(%s, %s)", (day, day + timedelta(days=1)))
        connection.execute("RESET DateStyle")
        connection.execute("SET TimeZone = 'UTC'")
        bounds = connection.execute(
            "SELECT pg_get_expr(c.relpartbound, c.oid) FROM pg_class c WHERE c.relname = %s",
            (f"equity_data_{day:%Y%m%d}",)).fetchone()[0]
        start = datetime.combine(day, datetime.min.time(), NEW_YORK)
        assert f"'{start.astimezone(timezone.utc):%Y-%m-%d %H:%M:%S}+00'" in bounds, bounds
        assert connection.execute("SELECT create_partitions(%s, %s, 'equity_data')", (
            day - timedelta(days=1), day + timedelta(days=2))).fetchone() == (2,), \
            "the writer's own call later finds no overlap: two new days"
