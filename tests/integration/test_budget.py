"""The storage budget kept as a user meets it: a small budget on a real Postgres, trading days written through
the writer's own write path, the keeper run after every batch as the writer's minute check would (a whole day
between checks would be a day's growth past the high-water mark), and the command the writer starts
(`python -m common.store.budget`) when an archive cannot be written."""

from __future__ import annotations

import os
import subprocess
import sys
from datetime import date, datetime, time, timedelta, timezone

import msgspec
import psycopg
import pyarrow.parquet as pq

from common.feed.market_hours import NEW_YORK
from common.store import archive, budget, db
from common.transport.messages import EquityTrade, IndicatorValue, OptionRow
from tests.helpers.harness import ROOT

#: Rows a trading day adds per table: about 3 MB a day with the indexes.
TRADES, OPTIONS = 6_000, 2_000
DAYS = 6


def trading_day(day: date) -> dict[str, list[tuple]]:
    """One day's trades, indicator values and option snapshots, as the writer stores them."""
    open_ms = int(datetime.combine(day, datetime.min.time(), NEW_YORK).timestamp() * 1000) + 34_200_000
    trades = [EquityTrade("SPY", open_ms + 2_000 * n, 600 + (n % 97) / 100, 100, 100 * (n + 1), 100, 599.99, 600.01,
                          (open_ms + 2_000 * n) * 1_000_000 + 5_000_000) for n in range(TRADES)]
    values = [IndicatorValue(t.symbol, t.trade_time_ms, t.day_volume, t.price, 600.0, 600.01, t.received_ns)
              for t in trades]
    options = [OptionRow("SPY", f"SPY   {day:%y%m%d}C00{590 + n % 20}000", open_ms + 60_000 * (n // 20), "C",
                         590.0 + n % 20, day.isoformat(), 10.0, 9.9, 10.1, 10.0, n, 1000, 0.5, 0.01, -0.2, 0.1, 0.02,
                         0.18, 600.0, "schwab", open_ms * 1_000_000) for n in range(OPTIONS)]
    return {"equity_data": list(map(msgspec.structs.astuple, trades)),
            "indicators": list(map(msgspec.structs.astuple, values)),
            "option_prices": list(map(msgspec.structs.astuple, options))}


def size(url: str) -> int:
    with psycopg.connect(url) as conn:
        return budget.database_size(conn)


def test_the_budget_is_never_passed_and_every_dropped_day_is_in_the_archive_row_for_row(migrated_url, tmp_path):
    today = datetime.now(NEW_YORK).date()
    first = today - timedelta(days=DAYS)
    with psycopg.connect(migrated_url, autocommit=True) as conn:
        for start in (first, first + timedelta(days=7)):  # at most 64 partitions a call (031)
            conn.execute("SELECT create_partitions(%s, %s)", (start, min(start + timedelta(days=6), today + timedelta(
                days=7))))
    # Room for the catalog, the empty days ahead and about three trading days.
    budget_bytes = ((size(migrated_url) >> 20) + 12) << 20
    destination = archive.LocalDestination(tmp_path / "archive")
    written: dict[tuple[str, date], int] = {}
    writer, keeper = db.connect(migrated_url), psycopg.connect(migrated_url, autocommit=True)
    for offset in range(DAYS):
        day = first + timedelta(days=offset)
        # The end of that day's session: the days before it are past, the keeper may drop them.
        now = datetime.combine(day, time(16), NEW_YORK)
        for table, table_rows in trading_day(day).items():
            for start in range(0, len(table_rows), 1_000):  # the writer's batches, one COPY and statement each
                db.write_batches(writer, {table: table_rows[start:start + 1_000]})
                assert budget.database_size(keeper) <= budget_bytes, f"{day}: the database passed the budget"
                budget.keep(keeper, "test", budget_bytes, now,
                            lambda table, day: archive.archive_day(keeper, table, day, destination))
            written[(table, day)] = len(table_rows)
    writer.close()
    keeper.close()

    with psycopg.connect(migrated_url) as conn:
        kept = {(table, day) for table, day, _ in conn.execute("SELECT * FROM stored_days()").fetchall()}
        archived = {(table, day): (rows, location) for table, day, rows, location in conn.execute(
            "SELECT table_name, day, row_count, location FROM archive_log").fetchall()}
        level, detail = conn.execute("SELECT level, detail FROM storage_budget WHERE deployment = 'test'").fetchone()
    dropped = {key for key in written if key not in kept}
    assert dropped, "a budget of three days must have dropped older ones"
    for table in ("equity_data", "option_prices", "indicators"):
        gone = [day for name, day in dropped if name == table]
        stayed = [day for name, day in written if name == table and (name, day) in kept]
        assert gone and stayed and max(gone) < min(stayed), f"{table}: the oldest days go, the newest stay"
    assert len([key for key in dropped if key[0] == "equity_data"]) >= len(
        [key for key in dropped if key[0] == "indicators"]), "ticks go before indicators"
    for key in dropped:
        rows, location = archived[key]
        assert rows == written[key], f"{key}: the archive holds every row"
        assert pq.ParquetFile(location).metadata.num_rows == written[key]
    assert level in ("ok", "warn"), f"past days were there to drop: the budget holds ({level}: {detail})"


def test_a_failing_archive_keeps_the_partition_and_says_so(migrated_url, tmp_path):
    today = datetime.now(NEW_YORK).date()
    day = today - timedelta(days=2)
    with psycopg.connect(migrated_url, autocommit=True) as conn:
        conn.execute("SELECT create_partitions(%s, %s)", (day, today))
    writer = db.connect(migrated_url)
    db.write_batches(writer, {"equity_data": trading_day(day)["equity_data"][:500]})
    writer.close()
    blocked = tmp_path / "not-a-directory"
    blocked.write_text("a file where the archive directory should be")
    env = {**os.environ, "DATABASE_URL": migrated_url, "STREAM_SOURCE": "simulator", "STREAMING_VAR": str(tmp_path),
           "STORAGE_BUDGET_MB": "1", "ARCHIVE_DIR": str(blocked), "DEPLOYMENT": "test"}
    keeper = subprocess.run([sys.executable, "-m", "common.store.budget"], env=env, cwd=ROOT,
                            capture_output=True, text=True, timeout=120)
    assert "a day could not be archived and dropped; it is kept" in keeper.stdout
    with psycopg.connect(migrated_url) as conn:
        assert conn.execute("SELECT count(*) FROM equity_data").fetchone()[0] == 500, "nothing dropped unarchived"
        assert conn.execute("SELECT count(*) FROM archive_log").fetchone()[0] == 0
        (level, detail) = conn.execute("SELECT level, detail FROM storage_budget").fetchone()
    assert level == "crit" and "of 1 MB" in detail, "a 1 MB budget is spent by the catalog alone"


def test_the_command_trims_today_when_past_days_are_not_enough(migrated_url, tmp_path):
    """`python -m common.store.budget` as the writer starts it, judged at 12:40 today: a 1 MB budget that the
    catalog alone passes, no past day to drop, so today's rows before 12:00 go to the archive and leave."""
    today = datetime.now(NEW_YORK).date()
    rows = trading_day(today)["equity_data"]  # every 2 s from 09:30 to 12:50
    writer = db.connect(migrated_url)
    with psycopg.connect(migrated_url, autocommit=True) as conn:
        conn.execute("SELECT create_partitions(%s, %s)", (today, today))
        db.write_batches(writer, {"equity_data": rows})
    writer.close()
    env = {**os.environ, "DATABASE_URL": migrated_url, "STREAM_SOURCE": "simulator", "STREAMING_VAR": str(tmp_path),
           "STORAGE_BUDGET_MB": "1", "ARCHIVE_DIR": str(tmp_path / "archive"), "DEPLOYMENT": "test"}
    at = datetime.combine(today, time(12, 40), NEW_YORK).isoformat()
    keeper = subprocess.run([sys.executable, "-m", "common.store.budget", "--now", at], env=env, cwd=ROOT,
                            capture_output=True, text=True, timeout=120)
    assert keeper.returncode == 0, keeper.stdout + keeper.stderr
    cut = datetime.combine(today, time(12), NEW_YORK)
    trimmed = sum(1 for row in rows if row[1] < cut.timestamp() * 1000)
    with psycopg.connect(migrated_url) as conn:
        assert conn.execute("SELECT count(*), min(timestamp) >= %s FROM equity_data", (cut,)).fetchone() == (
            len(rows) - trimmed, True)
        assert conn.execute("SELECT table_name, row_count, trimmed_before FROM archive_log"
                            " WHERE trimmed_before IS NOT NULL").fetchall() == [("equity_data", trimmed, cut)]
    assert pq.read_table(tmp_path / "archive" / "table=equity_data" / f"day={today}").num_rows == trimmed
    bad = subprocess.run([sys.executable, "-m", "common.store.budget", "--now", "2026-12-07T16:00"], env=env,
                         cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert bad.returncode == 2 and "has no UTC offset" in bad.stderr


def test_the_budget_is_recorded_for_health_and_no_api_role_sees_it(migrated_url):
    with psycopg.connect(migrated_url, autocommit=True) as conn:
        now = datetime.now(timezone.utc)
        verdict, measured, days = budget.measure(conn, "test", 500 << 20, now)
        assert verdict.level == "ok" and abs(measured - budget.database_size(conn)) < 1 << 20 and days
        for role in ("anon", "authenticated"):
            conn.execute(f"SET ROLE {role}")
            for statement in ("SELECT * FROM storage_budget", "SELECT * FROM stored_days()"):
                try:
                    conn.execute(statement)
                except psycopg.errors.InsufficientPrivilege:
                    pass
                else:
                    raise AssertionError(f"{role} ran {statement}")
            conn.execute("RESET ROLE")
        health = conn.execute("SELECT database_mb, budget_mb, budget_status FROM get_streaming_health('SPY')").fetchone()
    assert health[1] == 500 and health[2] == "ok" and health[0] > 0


def test_a_day_larger_than_the_budget_is_trimmed_as_it_goes_and_every_row_is_in_postgres_or_the_archive(
        migrated_url, tmp_path):
    """As 50 tickers with their bands on a 500 MB plan, scaled down: the day's market data is more than the budget
    holds, so once yesterday is gone today's older hours go to the archive while the session goes on."""
    today = datetime.now(NEW_YORK).date()
    yesterday = today - timedelta(days=1)
    with psycopg.connect(migrated_url, autocommit=True) as conn:
        conn.execute("SELECT create_partitions(%s, %s)", (yesterday, today + timedelta(days=7)))
    budget_bytes = ((size(migrated_url) >> 20) + 8) << 20
    destination = archive.LocalDestination(tmp_path / "archive")
    open_ms = int(datetime.combine(today, time(9, 30), NEW_YORK).timestamp() * 1000)
    # About 13 MB of trades and indicator values over the session, 2 MB an hour: a day is more than the 8 MB spare.
    trades = [EquityTrade(f"T{n % 4}", open_ms + 650 * n, 600 + (n % 97) / 100, 100, 100 * (n + 1), 100, 599.99,
                          600.01, (open_ms + 650 * n) * 1_000_000) for n in range(36_000)]
    written = {"equity_data": len(trades) + 500, "indicators": len(trades)}
    writer, keeper = db.connect(migrated_url), psycopg.connect(migrated_url, autocommit=True)
    db.write_batches(writer, {"equity_data": trading_day(yesterday)["equity_data"][:500]})
    peak = 0
    for start in range(0, len(trades), 1_000):
        batch = trades[start:start + 1_000]
        db.write_batches(writer, {
            "equity_data": list(map(msgspec.structs.astuple, batch)),
            "indicators": [msgspec.structs.astuple(IndicatorValue(t.symbol, t.trade_time_ms, t.day_volume, t.price,
                                                                  600.0, 600.01, t.received_ns)) for t in batch]})
        peak = max(peak, budget.database_size(keeper))
        assert peak <= budget_bytes, f"the database passed the budget after {start + 1_000} trades"
        now = datetime.fromtimestamp(batch[-1].trade_time_ms / 1000, timezone.utc)
        budget.keep(keeper, "test", budget_bytes, now,
                    lambda table, day: archive.archive_day(keeper, table, day, destination),
                    trim=lambda table, day, before: archive.trim_day(keeper, table, day, before, destination)
                    is not None)
    writer.close()

    pieces = keeper.execute("SELECT table_name, day, trimmed_before FROM archive_log WHERE trimmed_before IS NOT NULL"
                            " ORDER BY 3").fetchall()
    assert {table for table, _, _ in pieces} == {"equity_data", "indicators"} and {d for _, d, _ in pieces} == {today}
    assert len(pieces) >= 6, "today was trimmed hour by hour"
    last_cut = pieces[-1][2]
    for table, count in written.items():
        in_postgres = [row[0] for row in keeper.execute(f"SELECT id FROM {table}").fetchall()]
        folders = sorted((tmp_path / "archive").glob(f"table={table}/day=*"))
        archived = [i for folder in folders for i in pq.read_table(folder, columns=["id"]).column("id").to_pylist()]
        assert len(in_postgres) + len(archived) == count and len(set(in_postgres) | set(archived)) == count, \
            f"{table}: every row once, in Postgres or in the archive"
        assert keeper.execute(f"SELECT min(timestamp) >= %s FROM {table}", (last_cut,)).fetchone() == (True,), \
            f"{table}: Postgres keeps the newest rows"
    level, detail = keeper.execute("SELECT level, detail FROM storage_budget WHERE deployment = 'test'").fetchone()
    keeper.close()
    assert level == "warn" and "no longer fits" in detail, f"trimmed, the budget holds: a warning ({level}: {detail})"
