"""The writer's COPY path against the alternatives the issue asked to weigh: a measurement, not a test.

    nice python -m tests.copy_bench [--batches 2000] [--trades 11] [--options 5]

On a throwaway local Postgres with every migration applied, writes --batches
batches each way, each batch its own transaction, and prints one JSON object
with the client's CPU and the wall time per batch of each:

- `writer`: what the writer does (`common/db.write_batches`): one text COPY
  of one JSON line per table into one TEMP table, then one statement that
  moves every table's rows with `INSERT ... SELECT ... ON CONFLICT DO
  NOTHING` (converting in SQL) and empties the staging table;
- `binary_staging`: the writer's previous path: a binary COPY of each
  table's struct fields into its own TEMP table, then the same INSERTs, in
  one transaction;
- `direct` (trades only, against `writer` on the same trades): COPY straight
  into `equity_data`, converting in Python what the SQL converts (epoch ms to
  a timestamp, a float to a decimal of six places as float8::numeric does). A
  duplicate aborts a direct COPY's whole transaction, so a writer would need
  a staging path as its fallback.

A mixed batch is --trades trades, as many indicator values and --options
option rows (the 4-ticker feed's average batch). The Postgres server's CPU is
not counted: on Supabase it is not ours.
"""

from __future__ import annotations

import argparse
import datetime
import json
import shutil
import tempfile
import time
from collections.abc import Callable
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path

import msgspec
import psycopg

from common.store import db, migrate
from common.store.localpg import LocalPostgres
from common.transport.messages import EquityTrade, IndicatorValue, OptionRow

Batch = dict[str, list[tuple]]
EPOCH = datetime.datetime(1970, 1, 1, tzinfo=datetime.UTC)
SIX_PLACES = Decimal("0.000001")
DIRECT = ("ticker", "timestamp", "price", "volume", "day_volume", "last_size", "bid", "ask", "received_at")
DIRECT_TYPES = ("text", "timestamptz", "numeric", "int8", "int8", "int8", "numeric", "numeric", "timestamptz")


def six_places(value: float | None) -> Decimal | None:
    return None if value is None else Decimal(format(value, ".15g")).quantize(SIX_PLACES, ROUND_HALF_UP)


def direct_row(trade: tuple) -> tuple:
    """The row the writer's SELECT makes of a trade's fields, made in Python."""
    symbol, ms, price, size, day_volume, last_size, bid, ask, received_ns = trade
    return (symbol, EPOCH + datetime.timedelta(milliseconds=ms), six_places(price), size, day_volume, last_size,
            six_places(bid), six_places(ask), EPOCH + datetime.timedelta(microseconds=received_ns // 1000))


def batch(number: int, trades: int, options: int) -> Batch:
    base, now = 1_780_000_000_000 + number * 1_000, time.time_ns()
    volume = 1_000_000 + number * trades
    made: dict[str, list[msgspec.Struct]] = {
        "equity_data": [EquityTrade("SPY", base + i, 417.09 + i / 100, 100, volume + i, 100, 417.08, 417.10, now)
                        for i in range(trades)],
        "indicators": [IndicatorValue("SPY", base + i, volume + i, 417.09 + i / 100, 417.0512, 416.987654, now)
                       for i in range(trades)],
        "option_prices": [OptionRow("SPY", f"SPY   261124C00{400 + i}000", base, "C", 400.0 + i, "2026-11-24",
                                    1.2345, 1.23, 1.24, 1.235, 1_234, 5_678, 0.5123, 0.0456, -0.1234, 0.0789,
                                    0.0123, 0.1834, 417.09, "schwab", now) for i in range(options)],
    }
    return {table: [msgspec.structs.astuple(row) for row in rows] for table, rows in made.items() if rows}


def writer(conn: psycopg.Connection, rows: Batch) -> None:
    db.write_batches(conn, rows)


def binary_staging_sql(table: str) -> tuple[str, str, str]:
    """CREATE, COPY and INSERT of the previous path, from the same TableSpec the writer uses."""
    spec = db.TABLES[table]
    fields = ", ".join(f"{field} {kind}" for field, kind in spec.fields)
    return (f"CREATE TEMP TABLE IF NOT EXISTS stage_{table} ({fields})",
            f"COPY stage_{table} FROM STDIN (FORMAT BINARY)",
            f"WITH moved AS (DELETE FROM stage_{table} RETURNING *)"
            f" INSERT INTO public.{table} ({', '.join(column for column, _ in spec.target)})"
            f" SELECT {', '.join(expression for _, expression in spec.target)} FROM moved AS row"
            f" ON CONFLICT ({', '.join(spec.conflict)}) DO NOTHING")


def binary_staging(conn: psycopg.Connection, rows: Batch) -> None:
    with conn.transaction(), conn.cursor() as cursor:
        for table, table_rows in rows.items():
            _, copy_sql, _ = binary_staging_sql(table)
            with cursor.copy(copy_sql) as copy:
                copy.set_types([kind for _, kind in db.TABLES[table].fields])
                for row in table_rows:
                    copy.write_row(row)
        cursor.execute("; ".join(binary_staging_sql(table)[2] for table in rows))


def direct(conn: psycopg.Connection, rows: Batch) -> None:
    with conn.transaction(), conn.cursor() as cursor:
        with cursor.copy(f"COPY public.equity_data ({', '.join(DIRECT)}) FROM STDIN (FORMAT BINARY)") as copy:
            copy.set_types(DIRECT_TYPES)
            for trade in rows["equity_data"]:
                copy.write_row(direct_row(trade))


def measure(conn: psycopg.Connection, write: Callable[[psycopg.Connection, Batch], None],
            batches: list[Batch]) -> dict[str, float]:
    write(conn, batches[0])  # warm: staging tables, prepared statements
    cpu, wall = time.process_time(), time.perf_counter()
    for rows in batches[1:]:
        write(conn, rows)
    cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
    return {"client_cpu_us_per_batch": round(cpu * 1e6 / (len(batches) - 1), 1),
            "wall_us_per_batch": round(wall * 1e6 / (len(batches) - 1), 1)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batches", type=int, default=2000)
    parser.add_argument("--trades", type=int, default=11)
    parser.add_argument("--options", type=int, default=5)
    args = parser.parse_args()
    base = Path(tempfile.mkdtemp(prefix="copybench", dir="/tmp"))
    cluster = LocalPostgres(base / "pg")
    cluster.init()
    cluster.start()
    try:
        with migrate.connect(cluster.url()) as conn:
            migrate.migrate(conn)
        conn = db.connect(cluster.url())
        try:
            for table in ("equity_data", "indicators", "option_prices"):
                conn.execute(binary_staging_sql(table)[0])
            numbers = iter(range(10**9))

            def made(trades: int, options: int) -> list[Batch]:
                return [batch(next(numbers), trades, options) for _ in range(args.batches + 1)]

            result = {
                "batches": args.batches,
                "mixed": {"trades": args.trades, "indicator_values": args.trades, "option_rows": args.options,
                          "writer": measure(conn, writer, made(args.trades, args.options)),
                          "binary_staging": measure(conn, binary_staging, made(args.trades, args.options))},
                "trades_only": {"trades": args.trades,
                                "writer": measure(conn, writer, made(args.trades, 0)),
                                "direct": measure(conn, direct, made(args.trades, 0))},
                "rows_stored": dict(conn.execute(
                    "SELECT 'equity_data', count(*) FROM equity_data UNION ALL SELECT 'indicators', count(*)"
                    " FROM indicators UNION ALL SELECT 'option_prices', count(*) FROM option_prices").fetchall()),
            }
        finally:
            conn.close()
    finally:
        cluster.remove()
        shutil.rmtree(base, ignore_errors=True)
    print(json.dumps(result))


if __name__ == "__main__":
    main()
