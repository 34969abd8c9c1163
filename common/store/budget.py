"""The storage budget the service keeps: the database stays under STORAGE_BUDGET_MB, and nothing is lost.

Supabase measures a plan by `pg_database_size` and makes a free database
that passes 500 MB read-only, after which every batch fails. So the writer
measures the same (`measure`: a catalog read, every BUDGET_CHECK seconds)
and, when the database passes HIGH_WATER of the budget, or a day is older
than the age retention allows, starts this module as a command of its own
(`python -m common.store.budget`), which archives whole New York days
(`common/store/archive.py`: Parquet, verified read back) and then drops
them (`drop_archived_day` refuses a day whose archive is not verified, and
today's), until a day's growth fits under HIGH_WATER again (LOW_WATER before
a rate is measured): so it runs about once a day and Postgres keeps as many
days as fit. The command imports the Parquet and S3 libraries; the writer
never does.

A day that alone is more than HIGH_WATER of the budget (50 tickers with
their option bands on a 500 MB plan): once every past day is gone and the
database is still past TRIM_AT (`must_trim`), the keeper trims today
(`trim_before`): each table of DROP_ORDER gives its rows before the last
whole hour at least TRIM_MARGIN ago to the archive as a piece of the day,
verified, and they are deleted (`trim_archived_rows` deletes exactly what
the piece holds) and vacuumed, so the day's later rows reuse their room and
the database stops growing: Postgres keeps the last hour or two of today,
the archive everything before. TRIM_AT is below HIGH_WATER because the
room a trim frees is not all reused at once: index pages emptied by one
VACUUM are reused only after the next. The margin lets rows that come late (a
reconnect's snapshot, a writer catching up) arrive before the cut passes
them; one that comes later still stays, and goes with the day's last piece.

Which days go (`choose`): the oldest first; within a day, the service's own
metrics, then ticks and quotes, then option snapshots, then indicators; the
minute bars only when nothing else but today is left, and their rollups
never (they are not partitioned). Never today's partition, nor a day ahead.
Days past RETENTION_DAYS (market data) or METRICS_RETENTION_DAYS (metrics)
go whatever the size.

How it is judged (`judge`): the rate is the bytes a day added over the last
complete days (today's, scaled to a whole day, before there is one); the
days left are what the budget, plus every past day the keeper may drop,
holds at that rate. WARN from HIGH_WATER or under a week left (under a
day: a day no longer fits, and today is trimmed as it goes), CRIT from
CRIT_AT: the budget is about to be passed whatever the keeper does.
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta, timezone

import psycopg

from common.feed.market_hours import NEW_YORK

#: The keeper starts past HIGH_WATER of the budget and frees room for a day's growth below it (down to LOW_WATER
#: while no rate is measured yet); health is CRIT from CRIT_AT.
HIGH_WATER, LOW_WATER, CRIT_AT = 0.95, 0.90, 0.98
#: When past days are not enough, today is trimmed from this share of the budget (see the docstring).
TRIM_AT = LOW_WATER
#: WARN with fewer days than this left at the measured rate (CRIT under one).
WARN_DAYS = 7.0
#: The complete days whose growth makes the rate.
RATE_DAYS = 7
MB = 1 << 20

#: Within one day, the order tables go in; tables not named here are never dropped for the budget.
DROP_ORDER = ("streaming_metrics", "stream_metrics", "equity_data", "index_levels", "equity_quotes", "option_prices",
              "indicators")
#: Dropped only when nothing of DROP_ORDER but today is left. A day of equity_bars is deleted from its month's
#: partition (sql/031): the database shrinks when the month's partition, emptied, goes.
LAST = ("equity_bars",)
METRICS = ("streaming_metrics", "stream_metrics")
#: Today is trimmed on whole hours, the last one at least TRIM_MARGIN ago.
TRIM_STEP, TRIM_MARGIN = timedelta(hours=1), timedelta(minutes=30)

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class StoredDay:
    """One daily partition (sql/022): its table, its New York day and its size on disk."""

    table: str
    day: date
    bytes: int


@dataclass(frozen=True)
class Verdict:
    """What `judge` says: a level (ok, warn, crit), the days left (None: no growth measured), and why."""

    level: str
    days_left: float | None
    bytes_per_day: int | None
    detail: str


def growth(days: Iterable[StoredDay]) -> dict[date, int]:
    """Per New York day, the bytes its partitions hold beyond empty ones (a table's smallest partition)."""
    days = list(days)
    empty: dict[str, int] = {}
    for stored in days:
        empty[stored.table] = min(empty.get(stored.table, stored.bytes), stored.bytes)
    grown: dict[date, int] = {}
    for stored in days:
        grown[stored.day] = grown.get(stored.day, 0) + stored.bytes - empty[stored.table]
    return grown


def bytes_per_day(days: Iterable[StoredDay], today: date, day_fraction: float) -> int | None:
    """The bytes a day adds: the mean of the last RATE_DAYS complete days that have any; before there is one,
    today's so far scaled to a whole day (`day_fraction`: how much of today has passed). None: nothing yet."""
    grown = growth(days)
    complete = [grown[day] for day in sorted(grown, reverse=True) if day < today and grown[day] > 0][:RATE_DAYS]
    if complete:
        return round(sum(complete) / len(complete))
    if grown.get(today) and day_fraction > 0:
        return round(grown[today] / min(day_fraction, 1.0))
    return None


def droppable(stored: StoredDay, today: date) -> bool:
    return stored.day < today and stored.table in DROP_ORDER + LAST


def judge(database_bytes: int, budget_bytes: int, days: list[StoredDay], today: date,
          day_fraction: float) -> Verdict:
    """The budget's level, and the days it lasts at the measured rate with the keeper dropping past days."""
    rate = bytes_per_day(days, today, day_fraction)
    if not budget_bytes:
        return Verdict("ok", None, rate, f"no budget (STORAGE_BUDGET_MB=0); the database is "
                                         f"{database_bytes / MB:.1f} MB")
    spare = budget_bytes - database_bytes + sum(stored.bytes for stored in days if droppable(stored, today))
    left = round(max(spare, 0) / rate, 1) if rate else None
    used = database_bytes / budget_bytes
    said = (f"{database_bytes / MB:.1f} of {budget_bytes / MB:.0f} MB ({used:.0%})"
            + (f"; a day adds {rate / MB:.1f} MB, {left:g} days left with past days archived" if rate else ""))
    if left is not None and left < 1:
        said += ("; a day no longer fits: today's older hours go to the archive as the day goes, Postgres keeps "
                 "the last hour or two (fewer tickers, a narrower option band or a larger plan keep whole days)")
    if used >= CRIT_AT:
        return Verdict("crit", left, rate, said)
    if used >= HIGH_WATER or (left is not None and left < WARN_DAYS):
        return Verdict("warn", left, rate, said)
    return Verdict("ok", left, rate, said)


def in_drop_order(days: Iterable[StoredDay], today: date) -> list[StoredDay]:
    """Every partition the keeper may drop, in the order it drops them (the module docstring's rule)."""
    return sorted((stored for stored in days if droppable(stored, today)),
                  key=lambda s: (s.table in LAST, s.day, (DROP_ORDER + LAST).index(s.table)))


def aged(stored: StoredDay, today: date, retention_days: int, metrics_retention_days: int) -> bool:
    """Past its table's age retention (0: none)."""
    keep = metrics_retention_days if stored.table in METRICS else retention_days
    return bool(keep) and stored.day <= today - timedelta(days=keep)


def target(budget_bytes: int, daily_bytes: int | None) -> float:
    """The size the keeper frees down to: room for a day's growth below HIGH_WATER (LOW_WATER without a rate)."""
    return HIGH_WATER * budget_bytes - daily_bytes if daily_bytes else LOW_WATER * budget_bytes


def choose(days: list[StoredDay], database_bytes: int, budget_bytes: int, today: date,
           retention_days: int = 0, metrics_retention_days: int = 0, daily_bytes: int | None = None) -> list[StoredDay]:
    """The partitions to archive and drop, in order: those past their retention, and, once the database is past
    HIGH_WATER, the next in the drop order until `target` would be reached by the sizes given."""
    candidates = in_drop_order(days, today)
    chosen = [stored for stored in candidates if aged(stored, today, retention_days, metrics_retention_days)]
    size = database_bytes - sum(stored.bytes for stored in chosen)
    if budget_bytes and database_bytes > HIGH_WATER * budget_bytes:
        for stored in candidates:
            if size <= target(budget_bytes, daily_bytes):
                break
            if stored not in chosen:
                chosen.append(stored)
                size -= stored.bytes
    return chosen


def must_trim(days: Iterable[StoredDay], database_bytes: int, budget_bytes: int, today: date) -> bool:
    """Past days, all of them dropped, would not bring the database under TRIM_AT: today must give room."""
    past = sum(stored.bytes for stored in days if droppable(stored, today))
    return bool(budget_bytes) and database_bytes - past > TRIM_AT * budget_bytes


def trim_before(now: datetime) -> datetime | None:
    """The instant today's rows are trimmed before: the last whole hour at least TRIM_MARGIN ago, if it is
    inside today's New York day (None before that)."""
    at = now.astimezone(timezone.utc) - TRIM_MARGIN
    cut = at.replace(minute=0, second=0, microsecond=0)
    midnight = datetime.combine(now.astimezone(NEW_YORK).date(), datetime.min.time(), NEW_YORK)
    return cut if cut > midnight else None


def day_fraction(now: datetime) -> float:
    """How much of `now`'s New York day has passed."""
    local = now.astimezone(NEW_YORK)
    midnight, next_midnight = (datetime.combine(day, datetime.min.time(), NEW_YORK).astimezone(timezone.utc)
                               for day in (local.date(), local.date() + timedelta(days=1)))
    return (local.astimezone(timezone.utc) - midnight) / (next_midnight - midnight)


# --- the shell: the database -------------------------------------------------


def stored_days(conn: psycopg.Connection) -> list[StoredDay]:
    return [StoredDay(*row) for row in conn.execute("SELECT * FROM public.stored_days()").fetchall()]


def database_size(conn: psycopg.Connection) -> int:
    return conn.execute("SELECT pg_database_size(current_database())").fetchone()[0]


def measure(conn: psycopg.Connection, deployment: str, budget_bytes: int, now: datetime) -> tuple[Verdict, int, list[StoredDay]]:
    """Judge the budget now and record it in `storage_budget` (the row health reads)."""
    size, days = database_size(conn), stored_days(conn)
    verdict = judge(size, budget_bytes, days, now.astimezone(NEW_YORK).date(), day_fraction(now))
    conn.execute(
        "INSERT INTO public.storage_budget (deployment, budget_bytes, database_bytes, bytes_per_day, days_left,"
        " level, detail) VALUES (%s, %s, %s, %s, %s, %s, %s) ON CONFLICT (deployment) DO UPDATE SET"
        " (budget_bytes, database_bytes, bytes_per_day, days_left, level, detail, checked_at) = (excluded.budget_bytes,"
        " excluded.database_bytes, excluded.bytes_per_day, excluded.days_left, excluded.level, excluded.detail,"
        " clock_timestamp())",
        (deployment, budget_bytes, size, verdict.bytes_per_day, verdict.days_left, verdict.level, verdict.detail))
    return verdict, size, days


@dataclass
class Kept:
    """What a run of the keeper did: the partitions dropped, the tables whose today was trimmed, and what failed
    (each logged, and kept)."""

    dropped: list[StoredDay] = field(default_factory=list)
    trimmed: list[str] = field(default_factory=list)
    failed: int = 0


def keep(conn: psycopg.Connection, deployment: str, budget_bytes: int, now: datetime,
         archive: Callable[[str, date], None], retention_days: int = 0, metrics_retention_days: int = 0,
         trim: Callable[[str, date, datetime], bool] | None = None) -> Kept:
    """Archive and drop, in the drop order, what is past its retention and, while the database (measured again
    after each drop) is past the keeper's target, the next day. When even every past day gone would not bring the
    database under TRIM_AT (`must_trim`), every past day goes, and then today is trimmed with `trim(table, day,
    before)` (rows archived and deleted). A day whose archive fails stays (and
    is logged): the next in the order is tried instead, and the next run tries it again."""
    verdict, size, days = measure(conn, deployment, budget_bytes, now)
    today = now.astimezone(NEW_YORK).date()
    over = bool(budget_bytes) and size > HIGH_WATER * budget_bytes
    # Today is trimmed only once every older day is gone: the oldest data leaves first.
    trimming = trim is not None and must_trim(days, size, budget_bytes, today)
    kept = Kept()
    for stored in in_drop_order(days, today):
        forced = trimming or aged(stored, today, retention_days, metrics_retention_days)
        if not forced and not (over and database_size(conn) > target(budget_bytes, verdict.bytes_per_day)):
            continue
        try:
            archive(stored.table, stored.day)
            rows = conn.execute("SELECT public.drop_archived_day(%s, %s)", (stored.table, stored.day)).fetchone()[0]
        except Exception as error:  # noqa: BLE001 - any failure keeps the partition; the reason is logged
            log.error("a day could not be archived and dropped; it is kept",
                      extra={"table": stored.table, "day": stored.day.isoformat(), "reason": str(error)})
            kept.failed += 1
            continue
        kept.dropped.append(stored)
        log.info("archived and dropped", extra={"table": stored.table, "day": stored.day.isoformat(), "rows": rows})
    cut = trim_before(now)
    left = [stored for stored in days if stored not in kept.dropped]
    if trimming and cut is not None and must_trim(left, database_size(conn), budget_bytes, today):
        for stored in sorted((s for s in days if s.day == today and s.table in DROP_ORDER),
                             key=lambda s: DROP_ORDER.index(s.table)):
            try:
                trimmed = trim(stored.table, today, cut)
            except Exception as error:  # noqa: BLE001 - any failure keeps the rows; the reason is logged
                log.error("today's older rows could not be archived and trimmed; they are kept",
                          extra={"table": stored.table, "before": cut.isoformat(), "reason": str(error)})
                kept.failed += 1
                continue
            if trimmed:
                kept.trimmed.append(stored.table)
    if kept.dropped or kept.trimmed:
        measure(conn, deployment, budget_bytes, now)
    return kept


def _instant(text: str) -> datetime:
    moment = datetime.fromisoformat(text)
    if moment.tzinfo is None:
        raise argparse.ArgumentTypeError(f"{text!r} has no UTC offset; accepted: ISO 8601 with one, e.g. "
                                         "2026-12-07T16:00:00-05:00")
    return moment


def main(argv: list[str] | None = None) -> int:
    """The keeper as a command: what the writer starts when days must go (it may be run by hand too)."""
    parser = argparse.ArgumentParser(prog="streaming-budget", description=__doc__.splitlines()[0])
    parser.add_argument("--now", type=_instant, default=None,
                        help="judge as of this instant (ISO 8601 with its offset), not the clock's: for tests")
    args = parser.parse_args(argv)
    from common import log as logs
    from common.config import ConfigError, load
    from common.store import archive  # Parquet and S3: only this command pays for them, never a resident actor
    from common.store.connection import open_connection, reason

    logs.setup("archive")
    archive.keep_pandas_out()
    try:
        config = load()
    except ConfigError as error:
        log.error("settings refused", extra={"reason": str(error)})
        return 2
    try:
        with open_connection(config.database_url, "streaming-budget", statement_timeout_ms=0) as conn:
            target = archive.destination(config)
            kept = keep(conn, config.deployment, config.storage_budget_mb * MB, args.now or datetime.now(timezone.utc),
                        lambda table, day: archive.archive_day(conn, table, day, target),
                        config.retention_days, config.metrics_retention_days,
                        lambda table, day, before: archive.trim_day(conn, table, day, before, target) is not None)
    except psycopg.Error as error:
        log.error("the database failed; what was not dropped is kept", extra={"reason": reason(error, config.database_url)})
        return 1
    return 1 if kept.failed else 0


if __name__ == "__main__":
    sys.exit(main())
