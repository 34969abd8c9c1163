"""`make storage`: each table's size and growth, the trading days left before the budget is full, and how many
days of data the budget keeps in Postgres.

The figures are the database's own, from `storage_report(budget_mb,
window_days, as_of)` (sql/023 says how each is counted: a day not over yet
is projected from the part of it that has passed, never counted whole);
this module asks for them and prints them, as a table or as JSON. The
`total` row is the whole database, what Supabase's plans count against
their limit (STORAGE_BUDGET_MB, 500 MB by default: the free tier). With the
budget kept (`common/store/budget.py`), the newest days that fit stay in
Postgres and the older ones are in the archive: the closing lines say how
many. A bad budget or window is refused by the function, naming which.
"""

from __future__ import annotations

import argparse
import sys
from datetime import datetime, time, timezone
from decimal import Decimal

import msgspec
import psycopg

from common.config import ConfigError, load
from common.feed.market_hours import NEW_YORK
from common.store.budget import HIGH_WATER
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


#: Before this much of the session has passed, a projection from it is said to be rough.
SETTLED_MINUTES = 60
#: The regular session's hours, 09:30 to 16:00: how much of a day a share of a day's data stands for.
SESSION_HOURS = 6.5
#: The tables whose rate follows the market's session (the metrics' follows the clock).
MARKET = ("equity_data", "index_levels", "indicators", "option_prices", "equity_bars", "equity_quotes")


def read_report(database_url: str, budget_mb: int, window_days: int, as_of: datetime | None = None) -> list[TableStorage]:
    with open_connection(database_url, "streaming-storage", statement_timeout_ms=STATEMENT_TIMEOUT_MS) as conn:
        rows = conn.execute("SELECT * FROM public.storage_report(%s, %s, coalesce(%s, now()))",
                            (budget_mb, window_days, as_of)).fetchall()
    return [TableStorage(*row) for row in rows]


def session_minutes(as_of: datetime) -> float:
    """Minutes of the regular session (09:30-16:00 New York) passed at `as_of`."""
    local = as_of.astimezone(NEW_YORK)
    opened = datetime.combine(local.date(), time(9, 30), NEW_YORK)
    return min(max((local - opened).total_seconds() / 60, 0.0), 390.0)


def projection_note(rows: list[TableStorage], as_of: datetime) -> str | None:
    """Say so when the market tables' rate is today's part day scaled to a whole one, and that it is rough
    while less than SETTLED_MINUTES of the session have passed."""
    if not any(row.table_name in MARKET and row.row_count and not row.trading_days and row.rows_per_day
               for row in rows):
        return None
    minutes = session_minutes(as_of)
    note = f"No complete trading day yet: today's rows are projected to a whole day from {minutes:.0f} min of the session."
    if minutes < SETTLED_MINUTES:
        note += f" Less than {SETTLED_MINUTES} min have passed: the projection is rough until then."
    return note


def days_kept(rows: list[TableStorage], budget_mb: int) -> float | None:
    """The trading days of every table the budget keeps in Postgres: what the keeper's high-water mark leaves
    after what is not daily data (the catalog, the days made ahead), at the day's rate."""
    total = next(row for row in rows if row.table_name == "total")
    if not total.bytes_per_day:
        return None
    daily_data = sum(row.total_bytes for row in rows if row is not total)
    room = HIGH_WATER * budget_mb * MB - (total.total_bytes - daily_data)
    return max(room, 0) / float(total.bytes_per_day)


def render_table(rows: list[TableStorage], budget_mb: int, as_of: datetime | None = None) -> str:
    """Sizes in MB, growth per trading day, and the closing lines: how long the budget lasts, how many days it
    keeps in Postgres, and whether the rate is a projection of today."""
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
        kept = days_kept(rows, budget_mb)
        if kept >= 1:
            lines.append(f"With the budget kept, Postgres holds the newest {kept:.1f} trading days of every table; "
                         "older days are archived as Parquet (make archive) and dropped.")
        else:
            lines.append(f"A trading day is more than the budget: Postgres holds about the last "
                         f"{kept * SESSION_HOURS:.1f} hours of the session, and today's older hours are archived "
                         "as Parquet and deleted as the day goes.")
    if note := projection_note(rows, as_of or datetime.now(timezone.utc)):
        lines.append(note)
    return "\n".join(lines) + "\n"


def _figure(value: Decimal | None, spec: str) -> str:
    return "-" if value is None else format(value, spec)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="streaming-storage", description=__doc__.splitlines()[0])
    parser.add_argument("--budget-mb", type=int, help="the storage budget in MB (default: STORAGE_BUDGET_MB, or 500 "
                        "without one)")
    parser.add_argument("--window-days", type=int, default=7, help="days of rows the rate is taken from (default 7)")
    parser.add_argument("--as-of", type=datetime.fromisoformat, help="the moment to report for (ISO 8601, with "
                        "its offset; default: now)")
    parser.add_argument("--json", action="store_true", help="print the rows as a JSON array instead of a table")
    args = parser.parse_args(argv)
    if args.as_of is not None and args.as_of.tzinfo is None:
        parser.error("--as-of needs a UTC offset, e.g. 2026-12-07T10:02:00-05:00")
    try:
        config = load()
        url = config.database_url
        budget_mb = args.budget_mb or config.storage_budget_mb or 500
        rows = read_report(url, budget_mb, args.window_days, args.as_of)
    except ConfigError as error:
        sys.stderr.write(f"storage: {error}\n")
        return 2
    except psycopg.Error as error:
        sys.stderr.write(f"storage: {reason(error, url, limit=None)}\n")
        return 2
    sys.stdout.write(msgspec.json.encode(rows).decode() + "\n" if args.json
                     else render_table(rows, budget_mb, args.as_of))
    return 0


if __name__ == "__main__":
    sys.exit(main())
