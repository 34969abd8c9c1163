"""The writer's staging path against a direct COPY into the table: a measurement, not a test.

    nice python -m tests.copy_bench [--batches 2000] [--rows 25]

On a throwaway local Postgres with every migration applied, writes
--batches batches of --rows trades into `equity_data` two ways, each batch
its own transaction, and prints one JSON object with the client's CPU and
the wall time per batch (and per row) of each:

- `staging`: what the writer does (`common/db.write_batches`): COPY the
  struct's fields into a TEMP table, then `INSERT ... SELECT ... ON CONFLICT
  DO NOTHING`, which converts in SQL;
- `direct`: COPY straight into `equity_data`, converting in Python what the
  staging path converts in SQL (epoch ms to a timestamp, a float to a decimal
  of six places as float8::numeric does). A duplicate aborts a direct COPY's
  whole transaction, so a writer would need the staging path as its fallback.

The Postgres server's CPU is not counted: on Supabase it is not ours.
"""

from __future__ import annotations

import argparse
import datetime
import json
import shutil
import tempfile
import time
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path

import msgspec
import psycopg

from common import db, migrate
from common.localpg import LocalPostgres
from common.messages import EquityTrade

EPOCH = datetime.datetime(1970, 1, 1, tzinfo=datetime.UTC)
SIX_PLACES = Decimal("0.000001")
DIRECT = ("ticker", "timestamp", "price", "volume", "day_volume", "last_size", "bid", "ask", "received_at")
DIRECT_TYPES = ("text", "timestamptz", "numeric", "int8", "int8", "int8", "numeric", "numeric", "timestamptz")


def six_places(value: float | None) -> Decimal | None:
    return None if value is None else Decimal(format(value, ".15g")).quantize(SIX_PLACES, ROUND_HALF_UP)


def direct_row(trade: EquityTrade) -> tuple:
    """The row the staging path's SELECT makes of `trade`, made in Python."""
    return (trade.symbol, EPOCH + datetime.timedelta(milliseconds=trade.trade_time_ms), six_places(trade.price),
            trade.size, trade.day_volume, trade.last_size, six_places(trade.bid), six_places(trade.ask),
            EPOCH + datetime.timedelta(microseconds=trade.received_ns // 1000))


def trades(batch: int, rows: int) -> list[EquityTrade]:
    base = 1_780_000_000_000 + batch * 1_000
    return [EquityTrade("SPY", base + i, 417.09 + i / 100, 100, 1_000_000 + batch * rows + i, 100, 417.08, 417.10,
                        time.time_ns()) for i in range(rows)]


def staging(conn: psycopg.Connection, batch: list[EquityTrade]) -> None:
    db.write_batches(conn, {"equity_data": [msgspec.structs.astuple(trade) for trade in batch]})


def direct(conn: psycopg.Connection, batch: list[EquityTrade]) -> None:
    with conn.transaction(), conn.cursor() as cursor:
        with cursor.copy(f"COPY public.equity_data ({', '.join(DIRECT)}) FROM STDIN (FORMAT BINARY)") as copy:
            copy.set_types(DIRECT_TYPES)
            for trade in batch:
                copy.write_row(direct_row(trade))


def measure(conn: psycopg.Connection, write, batches: list[list[EquityTrade]]) -> dict[str, float]:
    rows = sum(map(len, batches))
    cpu, wall = time.process_time(), time.perf_counter()
    for batch in batches:
        write(conn, batch)
    cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
    return {"client_cpu_us_per_batch": round(cpu * 1e6 / len(batches), 1),
            "client_cpu_us_per_row": round(cpu * 1e6 / rows, 2),
            "wall_us_per_batch": round(wall * 1e6 / len(batches), 1)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batches", type=int, default=2000)
    parser.add_argument("--rows", type=int, default=25)
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
            staging(conn, trades(10**6, args.rows))  # warm: staging table, prepared statements
            direct(conn, trades(10**6 + 1, args.rows))
            made = [trades(n, args.rows) for n in range(2 * args.batches)]
            result = {"rows_per_batch": args.rows, "batches": args.batches,
                      "staging": measure(conn, staging, made[:args.batches]),
                      "direct": measure(conn, direct, made[args.batches:])}
            result["rows_stored"] = conn.execute("SELECT count(*) FROM equity_data").fetchone()[0]
            conn.rollback()
        finally:
            conn.close()
    finally:
        cluster.remove()
        shutil.rmtree(base, ignore_errors=True)
    print(json.dumps(result))


if __name__ == "__main__":
    main()
