"""Bar rollups (sql/024): 5-minute to daily bars kept up by triggers on equity_bars, against pandas' resample of
the same minute bars, written through the writer's own write path."""

from __future__ import annotations

import datetime

import psycopg
import pytest

from common.store import db
from common.store.migrate import SQL_DIR
from tests.helpers.roles import writer_login
from tests.helpers.rollups import (
    bar,
    differences,
    expected_rollups,
    latest,
    ms,
    rows,
    session_bars,
    stored_rollups,
)

DAY = datetime.date(2026, 11, 24)  # a Tuesday
NEXT_DAY = datetime.date(2026, 11, 25)
DENIED = psycopg.errors.InsufficientPrivilege
SCHEMA_EXAMPLE = """
SELECT timestamp AT TIME ZONE 'America/New_York' AS starts, open, high, low, close, volume, vwap, bar_count
FROM equity_bar_rollups
WHERE ticker = 'SPY' AND interval = '15m'
  AND timestamp >= '2026-11-24 09:30 America/New_York' AND timestamp < '2026-11-24 16:00 America/New_York'
ORDER BY timestamp;
"""


@pytest.fixture
def writer(migrated_url):
    """The writer's connection, as the writer makes it (the tables' owner, as with the local Postgres)."""
    conn = db.connect(migrated_url)
    try:
        yield conn
    finally:
        conn.close()


@pytest.fixture
def writer_role_url(migrated_url: str) -> str:
    return writer_login(migrated_url)


def assert_rollups_of(conn: psycopg.Connection, bars) -> None:
    expected = expected_rollups(bars)
    assert {interval for _, interval, _ in expected} == {"5m", "15m", "1h", "1d"}
    problems = differences(stored_rollups(conn), expected)
    assert not problems, "\n".join(problems[:20])


def test_rollups_follow_the_minute_bars_written_revised_and_repaired(writer):
    spy = session_bars("SPY", DAY, seed=1)
    qqq = session_bars("QQQ", DAY, seed=2) + session_bars("QQQ", NEXT_DAY, seed=3, first=(9, 25), last=(10, 40))
    assert any(b.volume == 0 for b in spy) and any(b.volume % 1 for b in spy), "zero and fractional volumes"
    assert db.write_batches(writer, {"equity_bars": rows(spy[:300])}) == {"equity_bars": 300}
    assert db.write_batches(writer, {"equity_bars": rows(spy[300:] + qqq)}) == {
        "equity_bars": len(spy) - 300 + len(qqq)}
    assert_rollups_of(writer, spy + qqq)
    session = writer.execute(SCHEMA_EXAMPLE).fetchall()  # SCHEMA.md's example query
    assert [str(starts.time()) for starts, *_ in session] == [
        f"{9 + (30 + 15 * k) // 60:02d}:{(30 + 15 * k) % 60:02d}:00" for k in range(26)]
    daily = writer.execute("SELECT timestamp, bar_count FROM equity_bar_rollups"
                           " WHERE ticker = 'SPY' AND interval = '1d'").fetchall()
    assert daily == [(datetime.datetime.fromtimestamp(ms(DAY, 9, 30) / 1000, datetime.timezone.utc),
                      sum(ms(DAY, 9, 30) <= b.start_ms < ms(DAY, 16, 0) for b in spy))], "the regular session only"

    # A minute of the regular session sent again by the stream with new values (a late trade), and a minute the
    # stream missed, repaired from price history; in one batch, as the writer may get them.
    stored = {b.start_ms for b in spy}
    revised_minute = next(b for b in spy if b.start_ms >= ms(DAY, 10, 7))
    revised = bar("SPY", revised_minute.start_ms, revised_minute.open, revised_minute.high + 1.5,
                  revised_minute.low - 0.25, revised_minute.close + 1.0, revised_minute.volume + 1234.5, 99_999)
    missing = next(m for m in range(ms(DAY, 11, 0), ms(DAY, 16, 0), 60_000) if m not in stored)
    repaired = bar("SPY", missing, 450.1234, 451.0, 449.5, 450.75, 777.0, source="repaired")
    before = dict(writer.execute("SELECT interval, updated_at FROM equity_bar_rollups"
                                 " WHERE ticker = 'QQQ' AND interval = '1d' AND timestamp > %s",
                                 (datetime.datetime.fromtimestamp(ms(NEXT_DAY, 0, 0) / 1000,
                                                                  datetime.timezone.utc),)).fetchall())
    assert db.write_batches(writer, {"equity_bars": rows([revised, repaired])}) == {"equity_bars": 2}
    kind = ("SELECT source, revised_at IS NOT NULL FROM equity_bars"
            " WHERE ticker = 'SPY' AND timestamp = to_timestamp(%s / 1000.0)")
    assert writer.execute(kind, (revised.start_ms,)).fetchone() == ("stream", True)
    assert writer.execute(kind, (missing,)).fetchone() == ("repaired", False)
    assert_rollups_of(writer, latest(spy + qqq, [revised, repaired]))
    after = dict(writer.execute("SELECT interval, updated_at FROM equity_bar_rollups"
                                " WHERE ticker = 'QQQ' AND interval = '1d' AND timestamp > %s",
                                (datetime.datetime.fromtimestamp(ms(NEXT_DAY, 0, 0) / 1000,
                                                                 datetime.timezone.utc),)).fetchall())
    assert after == before, "a bucket no new minute falls in is left alone"

    # The same bars again (a replay) change no bar and no rollup.
    untouched = writer.execute("SELECT max(updated_at), count(*) FROM equity_bar_rollups").fetchone()
    assert db.write_batches(writer, {"equity_bars": rows(spy + [revised, repaired])}) == {"equity_bars": 0}
    assert writer.execute("SELECT max(updated_at), count(*) FROM equity_bar_rollups").fetchone() == untouched


def test_buckets_are_new_york_session_aligned(writer):
    """One minute of each part of the day, and where it rolls up to."""
    minutes = {(8, 29): "pre", (9, 29): "pre", (9, 30): "open", (15, 59): "last", (16, 0): "post"}
    db.write_batches(writer, {"equity_bars": rows([bar("IWM", ms(DAY, h, m), 200, 201, 199, 200.5, 10)
                                                   for h, m in minutes])})
    found = writer.execute("SELECT interval, to_char(timestamp AT TIME ZONE 'America/New_York', 'HH24:MI'),"
                           " bar_count FROM equity_bar_rollups ORDER BY interval, timestamp").fetchall()
    assert found == [
        ("15m", "08:15", 1), ("15m", "09:15", 1), ("15m", "09:30", 1), ("15m", "15:45", 1), ("15m", "16:00", 1),
        ("1d", "09:30", 2),
        ("1h", "07:30", 1), ("1h", "08:30", 1), ("1h", "09:30", 1), ("1h", "15:30", 2),
        ("5m", "08:25", 1), ("5m", "09:25", 1), ("5m", "09:30", 1), ("5m", "15:55", 1), ("5m", "16:00", 1),
    ]


def test_a_bucket_of_no_volume_has_no_vwap(writer):
    db.write_batches(writer, {"equity_bars": rows([bar("DIA", ms(DAY, 12, 0), 300, 300, 300, 300, 0),
                                                   bar("DIA", ms(DAY, 12, 5), 301, 302, 300, 301, 10)])})
    found = writer.execute("SELECT interval, to_char(timestamp AT TIME ZONE 'America/New_York', 'HH24:MI'), volume,"
                           " vwap FROM equity_bar_rollups WHERE interval IN ('5m', '1d') ORDER BY 1, 2").fetchall()
    assert [(i, t, str(v), w if w is None else str(w)) for i, t, v, w in found] == [
        ("1d", "09:30", "10.0000", "301.000000"),
        ("5m", "12:00", "0.0000", None),
        ("5m", "12:05", "10.0000", "301.000000"),
    ]


def test_the_migration_fills_the_rollups_of_bars_already_stored_and_twice_changes_nothing(writer):
    spy = session_bars("SPY", DAY, seed=4)
    db.write_batches(writer, {"equity_bars": rows(spy)})
    writer.execute("DELETE FROM equity_bar_rollups")
    migration = SQL_DIR.joinpath("024_bar_rollups.sql").read_text()
    writer.execute(migration)
    assert_rollups_of(writer, spy)
    first = writer.execute("SELECT max(updated_at), count(*) FROM equity_bar_rollups").fetchone()
    writer.execute(migration)
    assert writer.execute("SELECT equity_bar_rollups_rebuild()").fetchone() == (0,), "nothing to change"
    assert writer.execute("SELECT max(updated_at), count(*) FROM equity_bar_rollups").fetchone() == first
    # The rebuild of some days, after rollups were deleted by hand.
    writer.execute("DELETE FROM equity_bar_rollups WHERE interval = '1h'")
    assert writer.execute("SELECT equity_bar_rollups_rebuild(%s, %s)", (DAY, DAY)).fetchone()[0] > 0
    assert_rollups_of(writer, spy)


def test_the_rollups_stay_when_minute_bars_go(writer):
    """Kept forever: deleting minute bars (or dropping their day) leaves the rollups, and a stray minute of that
    day stored again does not shrink them."""
    spy = session_bars("SPY", DAY, seed=5)
    db.write_batches(writer, {"equity_bars": rows(spy)})
    kept = stored_rollups(writer)
    writer.execute("DELETE FROM equity_bars")
    assert stored_rollups(writer) == kept
    db.write_batches(writer, {"equity_bars": rows([spy[len(spy) // 2]])})
    assert stored_rollups(writer) == kept
    assert writer.execute("SELECT * FROM cleanup_old_equity_data(1)").fetchall()
    assert stored_rollups(writer) == kept, "retention never touches them"
    assert writer.execute("SELECT relkind FROM pg_class WHERE oid = 'public.equity_bar_rollups'::regclass"
                          ).fetchone() == ("r",), "not partitioned"
    assert writer.execute("SELECT 'equity_bar_rollups' = ANY (partitioned_tables())").fetchone() == (False,)


def test_the_writer_role_rolls_up_through_the_triggers_and_touches_no_rollup_itself(writer_role_url, migrated_url):
    spy = session_bars("SPY", DAY, seed=6)
    conn = db.connect(writer_role_url)
    try:
        assert db.write_batches(conn, {"equity_bars": rows(spy)}) == {"equity_bars": len(spy)}
        revised = bar("SPY", spy[200].start_ms, spy[200].open, spy[200].high + 2, spy[200].low, spy[200].close + 1,
                      spy[200].volume + 100, 77_777)
        assert db.write_batches(conn, {"equity_bars": rows([revised])}) == {"equity_bars": 1}
        for statement in ("SELECT * FROM equity_bar_rollups",
                          "INSERT INTO equity_bar_rollups (ticker, interval, timestamp, open, high, low, close,"
                          " volume, bar_count) VALUES ('X', '5m', now(), 1, 1, 1, 1, 1, 1)",
                          "DELETE FROM equity_bar_rollups", "UPDATE equity_bar_rollups SET bar_count = 0",
                          "SELECT equity_bar_rollups_rebuild()",
                          "SELECT equity_bar_rollups_refresh(ARRAY['SPY'], ARRAY[now()])",
                          "SELECT * FROM equity_bar_rollup_buckets(now())"):
            with pytest.raises(DENIED):
                conn.execute(statement)
    finally:
        conn.close()
    with psycopg.connect(migrated_url) as owner:
        assert_rollups_of(owner, latest(spy, [revised]))


@pytest.mark.parametrize("role", ["anon", "authenticated", "service_role"])
def test_who_reads_and_writes_the_rollups(writer, role):
    db.write_batches(writer, {"equity_bars": rows(session_bars("SPY", DAY, seed=7, first=(9, 30), last=(9, 44)))})
    with psycopg.connect(writer.info.dsn, autocommit=True) as conn:
        def readable() -> bool:
            conn.execute(f"SET ROLE {role}")
            try:
                return conn.execute("SELECT count(*) FROM equity_bar_rollups").fetchone()[0] == 6
            except DENIED:
                return False
            finally:
                conn.execute("RESET ROLE")

        assert readable() == (role == "service_role"), "no API role reads market data until the owner says"
        conn.execute("SELECT set_market_read(ARRAY['anon', 'authenticated'])")
        assert readable(), "the switch opens the rollups too"
        conn.execute("SELECT set_market_read(ARRAY[]::text[])")
        assert readable() == (role == "service_role")

        conn.execute(f"SET ROLE {role}")
        writes = ("INSERT INTO equity_bar_rollups (ticker, interval, timestamp, open, high, low, close, volume,"
                  " bar_count) VALUES ('X', '5m', now(), 1, 1, 1, 1, 1, 1)",
                  "UPDATE equity_bar_rollups SET bar_count = bar_count", "DELETE FROM equity_bar_rollups")
        for statement in writes:
            if role == "service_role":
                conn.execute(statement)  # as on every market data table
            else:
                with pytest.raises(DENIED):
                    conn.execute(statement)
        with pytest.raises(DENIED):
            conn.execute("TRUNCATE equity_bar_rollups")
        if role == "service_role":
            assert conn.execute("SELECT equity_bar_rollups_rebuild()").fetchone() == (6,), "its rebuild"
        else:
            with pytest.raises(DENIED):
                conn.execute("SELECT equity_bar_rollups_rebuild()")
