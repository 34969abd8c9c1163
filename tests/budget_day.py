"""`python -m tests.budget_day`: 50 tickers with their bands on the default 500 MB budget, kept as the service keeps it.

A measurement, not a test (a few minutes; run it alone). On a throwaway
PostgreSQL with every migration, yesterday's last hour and then today's whole
trading day of the ledger's 50-ticker configuration (`tests.storage_ledger`:
a trade and an indicator value per ticker per second, a snapshot per contract
per minute, bars, the metrics round the clock) are written through the
writer's own write path in time order, five minutes of the day at a time,
and after each the budget keeper runs as the writer starts it
(`budget.keep` with the archive's `archive_day` and `trim_day`, to a local
archive), judged as of that moment of the day. The day is about 575 MB of
market data: more than the budget, so today is trimmed as it goes.

Prints one JSON object: the database's peak size and where it was, the
pieces archived, and, per table, the rows written against the rows in
Postgres plus the rows in the archive (each row once, by its id).
"""

from __future__ import annotations

import json
import shutil
import sys
import tempfile
import time
from collections import defaultdict
from datetime import date, datetime, timedelta, timezone
from pathlib import Path

import psycopg
import pyarrow.dataset as ds

from common.feed.market_hours import NEW_YORK
from common.store import archive, budget, db, migrate
from common.store.localpg import SUPERUSER, LocalPostgres
from tests.storage_ledger import BUDGET_MB, day_rows

TICKERS, CONTRACTS = 50, 30
STEP_S = 300
#: Where each table's row holds its time: milliseconds, or nanoseconds for the metrics.
TIME_AT = {"equity_data": (1, 1e-3), "indicators": (1, 1e-3), "equity_bars": (1, 1e-3), "option_prices": (2, 1e-3),
           "streaming_metrics": (0, 1e-9), "stream_metrics": (0, 1e-9)}


def in_steps(rows: dict[str, list], step_s: int) -> dict[int, dict[str, list]]:
    """Each table's rows by the step of the day they fall in, in time order."""
    steps: dict[int, dict[str, list]] = defaultdict(lambda: defaultdict(list))
    for table, table_rows in rows.items():
        index, scale = TIME_AT[table]
        for row in table_rows:
            steps[int(row[index] * scale) // step_s][table].append(row)
    return dict(sorted(steps.items()))


def archived_ids(root: Path, table: str) -> list[int]:
    folder = root / f"table={table}"
    if not folder.exists():
        return []
    return ds.dataset(folder, format="parquet").to_table(columns=["id"]).column("id").to_pylist()


def run(url: str, work: Path, today: date) -> dict:
    yesterday = today - timedelta(days=1)
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("SELECT create_partitions(%s, %s)", (yesterday - timedelta(days=1), today + timedelta(days=6)))
    destination = archive.LocalDestination(work / "archive")
    budget_bytes = BUDGET_MB * budget.MB
    written: dict[str, int] = defaultdict(int)
    writer = db.connect(url, statement_timeout_ms=0)
    keeper = psycopg.connect(url, autocommit=True)
    peak, peak_at, keeper_s = 0, "", 0.0
    # Of yesterday, its last hour of trading and the evening's metrics; of today, all of it.
    days = [(yesterday, lambda moment: moment.hour >= 15), (today, lambda moment: True)]
    for day, wanted in days:
        rows = day_rows(TICKERS, CONTRACTS, day)
        for step, tables in in_steps(rows, STEP_S).items():
            if not wanted(datetime.fromtimestamp(step * STEP_S, NEW_YORK)):
                continue
            for table, table_rows in tables.items():
                for start in range(0, len(table_rows), 5_000):
                    db.write_batches(writer, {table: table_rows[start:start + 5_000]})
                written[table] += len(table_rows)
            now = datetime.fromtimestamp((step + 1) * STEP_S, timezone.utc)
            size = budget.database_size(keeper)
            if size > peak:
                peak, peak_at = size, now.astimezone(NEW_YORK).isoformat(timespec="minutes")
            began = time.process_time()
            budget.keep(keeper, "measure", budget_bytes, now,
                        lambda table, day: archive.archive_day(keeper, table, day, destination),
                        trim=lambda table, day, before: archive.trim_day(keeper, table, day, before, destination)
                        is not None)
            keeper_s += time.process_time() - began
        del rows
    writer.close()
    tables = {}
    for table, count in sorted(written.items()):
        stored = [row[0] for row in keeper.execute(f"SELECT id FROM public.{table}").fetchall()]
        kept = archived_ids(work / "archive", table)
        tables[table] = {"written": count, "in_postgres": len(stored), "in_archive": len(kept),
                         "each_once": len(set(stored) | set(kept)) == len(stored) + len(kept) == count}
    pieces = keeper.execute("SELECT table_name, day, row_count, trimmed_before FROM archive_log WHERE row_count > 0"
                            " ORDER BY archived_at").fetchall()
    level, detail = keeper.execute("SELECT level, detail FROM storage_budget").fetchone()
    final = budget.database_size(keeper)
    keeper.close()
    return {"budget_mb": BUDGET_MB, "peak_mb": round(peak / budget.MB, 1), "peak_at": peak_at,
            "final_mb": round(final / budget.MB, 1), "keeper_cpu_s_in_this_process": round(keeper_s, 1),
            "pieces": [f"{table} {day} {rows} rows" + (f" before {before.astimezone(NEW_YORK):%H:%M}" if before else
                                                        " (whole day)") for table, day, rows, before in pieces],
            "tables": tables, "level": level, "detail": detail}


def main() -> int:
    base = Path(tempfile.mkdtemp(prefix="budgetday", dir="/tmp"))
    cluster = LocalPostgres(base / "pg")
    cluster.init()
    cluster.start()
    archive.keep_pandas_out()
    try:
        with psycopg.connect(cluster.url(SUPERUSER, "postgres"), autocommit=True) as admin:
            admin.execute("CREATE DATABASE budgetday OWNER postgres")
        url = cluster.url(dbname="budgetday")
        with migrate.connect(url) as conn:
            migrate.migrate(conn)
        report = run(url, base, datetime.now(NEW_YORK).date())
    finally:
        cluster.remove()
        shutil.rmtree(base, ignore_errors=True)
    sys.stdout.write(json.dumps(report, indent=1, default=str) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
