"""`make storage`: each table's size and growth, and the trading days left before a storage budget is full.

The figures are the database's own, from `storage_report(budget_mb,
window_days)` (sql/019 says how each is counted); this module asks for them
and prints them, as a table or as JSON. The `total` row is the whole
database, what Supabase's plans count against their limit (500 MB on the
free tier, the default budget). A bad budget or window is refused by the
function, naming which.
"""

from __future__ import annotations

import argparse
import sys
from decimal import Decimal

import msgspec
import psycopg

from common.config import ConfigError, load
from common.store.connection import open_connection, reason

MB = 1 << 20
#: Exact counts read every row: give a large table time.
STATEMENT_TIMEOUT_MS = 300_000


class TableStorage(msgspec.Struct, frozen=True):
    """One row of `storage_report`; the `total` row has no rows of its own, only the database's size and days."""

    table_name: str
    total_bytes: int
    table_bytes: int | None
    index_bytes: int | None
    row_count: int | None
    bytes_per_row: Decimal | None
    trading_days: int | None
    rows_per_day: Decimal | None
    bytes_per_day: Decimal | None
    days_until_full: Decimal | None


def read_report(database_url: str, budget_mb: int, window_days: int) -> list[TableStorage]:
    with open_connection(database_url, "streaming-storage", statement_timeout_ms=STATEMENT_TIMEOUT_MS) as conn:
        rows = conn.execute("SELECT * FROM public.storage_report(%s, %s)", (budget_mb, window_days)).fetchall()
    return [TableStorage(*row) for row in rows]


def render_table(rows: list[TableStorage], budget_mb: int) -> str:
    """Sizes in MB, growth per trading day, and one closing line: how long the budget lasts."""
    lines = [f"{'table':<18} {'size MB':>9} {'index MB':>9} {'rows':>11} {'B/row':>7} {'rows/day':>10} "
             f"{'MB/day':>8}"]
    total = next(row for row in rows if row.table_name == "total")
    for row in rows:
        if row is total:
            continue
        lines.append(f"{row.table_name:<18} {row.total_bytes / MB:>9.1f} {(row.index_bytes or 0) / MB:>9.1f} "
                     f"{row.row_count or 0:>11,} {_figure(row.bytes_per_row, '.0f'):>7} "
                     f"{_figure(row.rows_per_day, ',.0f'):>10} {float(row.bytes_per_day or 0) / MB:>8.2f}")
    lines.append(f"{'database':<18} {total.total_bytes / MB:>9.1f} {'':>9} {'':>11} {'':>7} {'':>10} "
                 f"{float(total.bytes_per_day or 0) / MB:>8.2f}")
    if total.days_until_full is None:
        lines.append(f"No rows in the window: at this rate the {budget_mb} MB budget is never full.")
    else:
        lines.append(f"At this rate the {budget_mb} MB budget is full in {total.days_until_full} trading days.")
    return "\n".join(lines) + "\n"


def _figure(value: Decimal | None, spec: str) -> str:
    return "-" if value is None else format(value, spec)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="streaming-storage", description=__doc__.splitlines()[0])
    parser.add_argument("--budget-mb", type=int, default=500, help="the storage budget in MB (default 500)")
    parser.add_argument("--window-days", type=int, default=7, help="days of rows the rate is taken from (default 7)")
    parser.add_argument("--json", action="store_true", help="print the rows as a JSON array instead of a table")
    args = parser.parse_args(argv)
    try:
        url = load().database_url
        rows = read_report(url, args.budget_mb, args.window_days)
    except ConfigError as error:
        sys.stderr.write(f"storage: {error}\n")
        return 2
    except psycopg.Error as error:
        sys.stderr.write(f"storage: {reason(error, url, limit=None)}\n")
        return 2
    sys.stdout.write(msgspec.json.encode(rows).decode() + "\n" if args.json else render_table(rows, args.budget_mb))
    return 0


if __name__ == "__main__":
    sys.exit(main())
