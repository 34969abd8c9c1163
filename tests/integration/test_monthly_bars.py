"""equity_bars by the month (sql/031, issue 25 item 3): the upgrade from a partition a day, a user's unbounded
query at three years of bars, and a day of bars archived, deleted from its month and restored."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import msgspec
import psycopg
import pytest

from common.store import archive, db, migrate
from common.store.archive import LocalDestination, archive_day, restore_day
from common.transport.messages import MinuteBar
from tests.helpers.archive import rows_of
from tests.helpers.partitions import sql_before, year_of_partitions

TODAY = datetime.now(timezone.utc).astimezone(archive.NEW_YORK).date()
BARS = "SELECT * FROM public.equity_bars ORDER BY id"
ROLLUPS = "SELECT * FROM public.equity_bar_rollups ORDER BY ticker, \"interval\", timestamp"
#: The partitions of equity_bars: their names' suffixes (YYYYMMDD a day's, YYYYMM a month's).
SPANS = ("SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid"
         " WHERE i.inhparent = 'public.equity_bars'::regclass ORDER BY 1")
#: Every bar in the partition partition_span names for its New York day.
IN_ITS_MONTH = ("SELECT count(*) FILTER (WHERE tableoid::regclass::text = 'streaming_partitions.'"
                " || (public.partition_span('equity_bars', (timestamp AT TIME ZONE 'America/New_York')::date)).name),"
                " count(*) FROM public.equity_bars")


def noon(day) -> int:
    """New York noon of `day`, in epoch milliseconds."""
    return int(datetime.combine(day, datetime.min.time().replace(hour=12), archive.NEW_YORK).timestamp() * 1000)


def bars(day, tickers=("SPY", "QQQ"), minutes=5) -> list[tuple]:
    return [(ticker, noon(day) + m * 60_000, 417.0 + m, 418.0 + m, 416.0 + m, 417.5 + m, 1_000.0 + m, m,
             noon(day) * 1_000_000) for ticker in tickers for m in range(minutes)]


def suffixes(conn: psycopg.Connection) -> list[str]:
    return [name.rpartition("_")[2] for (name,) in conn.execute(SPANS)]


def test_daily_bars_become_a_partition_a_month_with_every_bar_id_and_rollup_kept(db_url, tmp_path):
    days = [TODAY - timedelta(days=back) for back in (75, 40, 39, 10, 1, 0)]
    with migrate.connect(db_url) as owner:
        migrate.migrate(owner, sql_before(tmp_path, before="031"))
    conn = db.connect(db_url)
    try:
        for day in days:
            assert db.write_batches(conn, {"equity_bars": [msgspec.structs.astuple(MinuteBar(*row)) for row in bars(day)]}) == \
                {"equity_bars": 10}
        before = {"bars": conn.execute(BARS).fetchall(), "rollups": conn.execute(ROLLUPS).fetchall()}
        assert all(len(suffix) == 8 for suffix in suffixes(conn)), "a partition a day before 031"
    finally:
        conn.close()

    with migrate.connect(db_url) as owner:
        assert [m.version for m, done in migrate.migrate(owner) if done][0] == "031"
        months = {f"{day:%Y%m}" for day in days} | {f"{TODAY + timedelta(days=7):%Y%m}"}
        assert set(suffixes(owner)) == months, "one partition a month, yesterday to a week ahead's too"
        assert owner.execute(IN_ITS_MONTH).fetchone() == (60, 60)
        assert {"bars": owner.execute(BARS).fetchall(), "rollups": owner.execute(ROLLUPS).fetchall()} == before
        assert owner.execute("SELECT bars_by_month_step()").fetchone() == (False,), "nothing left to merge"
    conn = db.connect(db_url)
    try:
        last_id = before["bars"][-1][0]
        db.write_batches(conn, {"equity_bars": [msgspec.structs.astuple(MinuteBar(*bars(TODAY, ("IWM",), 1)[0]))]})
        assert conn.execute("SELECT max(id) FROM equity_bars").fetchone() == (last_id + 1,), "ids go on"
        far = TODAY + timedelta(days=70)
        db.write_batches(conn, {"equity_bars": [msgspec.structs.astuple(MinuteBar(*bars(far, ("IWM",), 1)[0]))]})
        assert f"{far:%Y%m}" in suffixes(conn), "a month made when a batch needs it"
    finally:
        conn.close()


def test_three_years_of_bars_cost_a_users_unbounded_query_a_partition_a_month(migrated_url):
    """A user's `WHERE ticker = … ORDER BY timestamp DESC LIMIT …` cannot be pruned: it plans and locks every
    partition. By the day, three years of bars took 4,464 locks (a Supabase nano's lock table holds 3,840)."""
    with psycopg.connect(migrated_url, autocommit=True) as conn:
        year_of_partitions(conn, "equity_bars", years=3)
        conn.execute("INSERT INTO equity_bars (ticker, timestamp, open, high, low, close, volume, source)"
                     " SELECT 'SPY', date_trunc('minute', now()) - d * interval '1 day', 417, 418, 416, 417.5, 100,"
                     " 'stream' FROM generate_series(0, 3 * 365, 7) AS d")
        partitions = len(conn.execute(SPANS).fetchall())
    assert 36 <= partitions <= 38, partitions
    with psycopg.connect(migrated_url) as conn:  # one transaction: every lock taken is still held at the end
        newest = conn.execute("SELECT timestamp FROM equity_bars WHERE ticker = 'SPY'"
                              " ORDER BY timestamp DESC LIMIT 100").fetchall()
        locks = conn.execute("SELECT count(*) FROM pg_locks WHERE pid = pg_backend_pid() AND locktype = 'relation'"
                             " AND relation <> 'pg_catalog.pg_locks'::regclass").fetchone()[0]
    assert len(newest) == 100
    assert locks <= 4 * partitions + 8, locks  # each month, its two indexes and its TOAST; the parent's


@pytest.fixture
def conn(migrated_url):
    with psycopg.connect(migrated_url, autocommit=True) as connection:
        yield connection


def test_a_day_of_bars_is_archived_deleted_from_its_month_and_the_month_dropped_once_empty(conn, migrated_url,
                                                                                         tmp_path):
    month_ago = (TODAY.replace(day=1) - timedelta(days=20)).replace(day=10)
    first, second = month_ago, month_ago + timedelta(days=1)
    writer = db.connect(migrated_url)
    try:
        for day in (first, second, TODAY):
            db.write_batches(writer, {"equity_bars": [msgspec.structs.astuple(MinuteBar(*row)) for row in bars(day)]})
    finally:
        writer.close()
    month = f"streaming_partitions.equity_bars_{first:%Y%m}"
    kept = rows_of(conn, "equity_bars", first)
    assert len(kept) == 10

    # The budget sees the month shared among its days so far.
    shares = conn.execute("SELECT day, total_bytes FROM stored_days() WHERE table_name = 'equity_bars'"
                          " AND date_trunc('month', day) = date_trunc('month', %s::date)", (first,)).fetchall()
    assert [day for day, _ in shares] == [first.replace(day=1) + timedelta(days=n) for n in range(len(shares))]
    assert len({size for _, size in shares}) == 1

    with pytest.raises(psycopg.errors.RaiseException, match="was never archived: kept"):
        conn.execute("SELECT drop_archived_day('equity_bars', %s)", (first,))
    dest = LocalDestination(tmp_path)
    for day in (first, second):
        assert archive_day(conn, "equity_bars", day, dest).rows == 10
    listed = {(table, day) for table, day, rows, _ in archive.partitions(conn, ["equity_bars"], TODAY) if rows}
    assert {("equity_bars", first), ("equity_bars", second)} <= listed and ("equity_bars", TODAY) not in listed

    assert conn.execute("SELECT drop_archived_day('equity_bars', %s)", (first,)).fetchone() == (10,)
    assert rows_of(conn, "equity_bars", first) == [] and len(rows_of(conn, "equity_bars", second)) == 10
    assert conn.execute("SELECT to_regclass(%s)", (month,)).fetchone()[0] is not None, "the month still has a day"
    assert conn.execute("SELECT drop_archived_day('equity_bars', %s)", (second,)).fetchone() == (10,)
    assert conn.execute("SELECT to_regclass(%s)", (month,)).fetchone() == (None,), "past and empty: dropped"
    assert len(rows_of(conn, "equity_bars", TODAY)) == 10, "this month's bars untouched"

    assert restore_day(conn, "equity_bars", first, dest).loaded
    assert rows_of(conn, "equity_bars", first) == kept, "every bar, its id too, back in a month made for it"
