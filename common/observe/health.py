"""Is the service doing its job right now? A table (or JSON) of checks, and exit 0, 1 or 2 for OK, WARN, CRIT.

`make health` and the `streaming-health` console command run it, so cron or
a monitor can act on the exit status. The facts are gathered once (Postgres,
supervisord) and judged by pure functions, so every threshold is tested
without sockets or a market clock. A table's freshness is judged only while
its session is open by the NYSE calendar (`MARKET_HOURS=always`, the
simulator's default, means always): weekends, holidays and early closes
never alarm. The database's checks are left out when it cannot be read: its
own CRIT says why.
"""

from __future__ import annotations

import argparse
import http.client
import json
import logging
import math
import shutil
import socket
import sys
import xmlrpc.client
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from enum import IntEnum
from pathlib import Path

import psycopg
from supervisor.xmlrpc import SupervisorTransport

from common.config import ACTORS, ConfigError, load
from common.feed.market_hours import MarketHoursError, MarketSchedule, regular_extra_for
from common.store.connection import open_connection, reason


class Level(IntEnum):
    """Nagios' order, so the worst level is the exit status."""

    OK = 0
    WARN = 1
    CRIT = 2


#: How far back error rates, ingest's status and journal lag are read: many metric intervals, not yesterday's.
WINDOW = timedelta(minutes=15)
_RECENT = f"the last {WINDOW.total_seconds() / 60:.0f} min"
#: Seconds since a table's newest row was inserted past which it is WARN / CRIT while its session is open.
#: Liquid tickers trade every second; a session that just opened is given the same grace.
FRESHNESS = {"equity_data": (120.0, 600.0), "indicators": (120.0, 600.0), "option_prices": (300.0, 900.0)}
#: Options quote in the regular session only, whatever else MARKET_SESSIONS streams.
OPTION_SESSIONS = ("regular",)
#: Errors per record an actor processed over WINDOW (errors with no records count as 100 %).
ERROR_RATE_WARN, ERROR_RATE_CRIT = 0.01, 0.05
#: How long the writer has trailed a stream; get_streaming_health calls 60 s "lagging" too.
LAG_WARN_S, LAG_CRIT_S = 60.0, 300.0
#: ingest's own statuses that need a person (CRIT) or a look (WARN); any other is OK.
INGEST_STATUSES = {
    "token_expired": (Level.CRIT, "Schwab refresh token expired: run `make login` on this host"),
    "connection_limit": (Level.CRIT, "Schwab refuses a second streamer for this login: stop the other one"),
    "reconnecting": (Level.WARN, "reconnecting to Schwab"),
    "stale": (Level.WARN, "ingest has sent no metrics for several intervals"),
}
#: supervisord states by level; any state not named (FATAL, EXITED, STOPPED, UNKNOWN) is CRIT.
SUPERVISOR_STATES = {"RUNNING": Level.OK, "STARTING": Level.WARN, "BACKOFF": Level.WARN, "STOPPING": Level.WARN}
#: A monitor must not hang on a dead host: connect, statement and RPC limits.
CONNECT_TIMEOUT_S = 5
STATEMENT_TIMEOUT_MS = 5000
SUPERVISOR_TIMEOUT_S = 5.0


@dataclass(frozen=True)
class Check:
    name: str
    level: Level
    detail: str
    value: float | str | None = None

    def as_dict(self) -> dict[str, object]:
        return {"name": self.name, "level": self.level.name, "detail": self.detail, "value": self.value}


@dataclass(frozen=True)
class DatabaseFacts:
    #: table -> seconds since its newest row was inserted (None: empty)
    ages: Mapping[str, float | None]
    #: actor -> (records processed, errors) over WINDOW
    activity: Mapping[str, tuple[int, int]]
    #: ingest's latest service_status within WINDOW
    ingest_status: str | None
    #: stream -> (lag_records, lag_seconds) of its latest row within WINDOW
    lags: Mapping[str, tuple[int, float]]
    #: the writer's worst storage-budget judgement (level, detail, seconds since), None before its first
    storage: tuple[str, str, float] | None = None
    #: ingest's latest word on Schwab's real-time entitlement: (LOGIN status, services whose items are delayed)
    entitlement: tuple[str | None, str] | None = None


@dataclass(frozen=True)
class ArchiveFacts:
    """The local archive (or, with a bucket, its staging directory): where, its bytes and files, and the free
    space on its disk."""

    where: str
    bytes: int
    files: int
    free_bytes: int
    bucket: str | None = None


@dataclass(frozen=True)
class Facts:
    database: DatabaseFacts | None
    database_error: str = ""
    #: actor -> (supervisord state name, its description); None when supervisord could not be asked
    actors: Mapping[str, tuple[str, str]] | None = None
    supervisor_error: str = ""
    archive: ArchiveFacts | None = None


# ---- the pure core ------------------------------------------------------------------------------------------


def _span(seconds: float) -> str:
    if seconds < 10:
        return f"{seconds:.1f} s"
    for unit, size in (("d", 86_400), ("h", 3600), ("min", 60)):
        if seconds >= 2 * size:
            return f"{seconds / size:.0f} {unit}"
    return f"{seconds:.0f} s"


def schedules_for(sessions: tuple[str, ...], always_open: bool,
                  option_extra: timedelta = timedelta(0)) -> dict[str, MarketSchedule | None]:
    """Each table's market schedule (None: never in session), from the NYSE calendar alone; options' regular
    session `option_extra` longer (an index's trade to 16:15).

    Schwab's market-hours endpoint would need a token and a network call; a
    monitor must not, and the calendar knows every scheduled closure.
    """
    streamed = MarketSchedule(None, sessions, always_open)
    option_sessions = tuple(s for s in sessions if s in OPTION_SESSIONS)
    options = streamed if always_open else MarketSchedule(None, option_sessions, regular_extra=option_extra) \
        if option_sessions else None
    return {"equity_data": streamed, "indicators": streamed, "option_prices": options}


def open_for(schedule: MarketSchedule | None, now: datetime) -> float | None:
    """Seconds the session containing `now` has been open (inf when always open); None outside sessions."""
    if schedule is None:
        return None
    if schedule.always_open:
        return math.inf
    try:
        window = schedule.window_at_or_after(now)
    except MarketHoursError:
        return None
    return (now - window.start).total_seconds() if window.start <= now else None


def check_database(error: str) -> Check:
    return Check("database", Level.CRIT, error) if error else Check("database", Level.OK, "connected")


def check_freshness(table: str, age_s: float | None, open_for_s: float | None, slack_s: float = 0.0) -> Check:
    """Stale is measured from the later of the newest row and the session's open, so an open is not an alarm;
    `slack_s` is how much later than its data a table's rows come by design (option snapshots: an interval)."""
    name, value = f"freshness:{table}", None if age_s is None else round(age_s, 3)
    newest = "no rows" if age_s is None else f"newest row {_span(age_s)} old"
    if open_for_s is None:
        return Check(name, Level.OK, f"market closed ({newest})", value)
    warn, crit = (limit + slack_s for limit in FRESHNESS[table])
    stale = open_for_s if age_s is None else min(age_s, open_for_s)
    level = Level.CRIT if stale > crit else Level.WARN if stale > warn else Level.OK
    detail = newest
    if stale < (math.inf if age_s is None else age_s):
        detail += f", session open {_span(open_for_s)}"
    if level is not Level.OK:
        detail += f" ({level.name} past {_span(crit if level is Level.CRIT else warn)})"
    return Check(name, level, detail, value)


def check_error_rate(activity: Mapping[str, tuple[int, int]]) -> Check:
    if not activity:
        return Check("error_rate", Level.WARN, f"no streaming_metrics rows in {_RECENT}")
    rates = {actor: (errors / records if records else 1.0 if errors else 0.0)
             for actor, (records, errors) in activity.items()}
    worst = max(rates.values())
    level = Level.CRIT if worst > ERROR_RATE_CRIT else Level.WARN if worst > ERROR_RATE_WARN else Level.OK
    erring = sorted((a for a in rates if activity[a][1]), key=lambda a: -rates[a])
    if not erring:
        records = sum(r for r, _ in activity.values())
        return Check("error_rate", level, f"no errors in {records:,} records in {_RECENT}", 0.0)
    detail = ", ".join(f"{a}: {activity[a][1]:,} errors in {activity[a][0]:,} records ({rates[a]:.2%})" for a in erring)
    return Check("error_rate", level, detail, round(worst, 6))


def check_ingest(status: str | None) -> Check:
    if status is None:
        return Check("ingest_status", Level.WARN, f"no report from ingest in {_RECENT}")
    level, detail = INGEST_STATUSES.get(status, (Level.OK, status))
    return Check("ingest_status", level, detail, status)


def check_entitlement(entitlement: tuple[str | None, str] | None) -> Check:
    """WARN while Schwab marks the level-one data it sends delayed: the account is not entitled to real-time
    quotes, and everything stored is about 15 minutes old."""
    if entitlement is None:
        return Check("realtime", Level.OK, "no level-one data yet")
    status, delayed = entitlement
    account = f" (LOGIN status {status})" if status else ""
    if delayed:
        return Check("realtime", Level.WARN,
                     f"Schwab sends {delayed.replace(',', ', ')} delayed{account}: quotes and trades are about 15 "
                     "minutes old; the account is not entitled to real-time data (sign Schwab's market data "
                     "agreements for it)", delayed)
    return Check("realtime", Level.OK, f"real-time{account}", "")


def check_lag(lags: Mapping[str, tuple[int, float]]) -> Check:
    if not lags:
        return Check("journal_lag", Level.OK, f"no stream reported in {_RECENT}", 0.0)
    stream = max(lags, key=lambda s: (lags[s][1], lags[s][0]))
    records, seconds = lags[stream]
    level = Level.CRIT if seconds > LAG_CRIT_S else Level.WARN if seconds > LAG_WARN_S else Level.OK
    if not seconds and not records:
        return Check("journal_lag", level, f"all {len(lags)} streams committed", 0.0)
    return Check("journal_lag", level, f"{stream} {records:,} records, {_span(seconds)} behind", seconds)


#: The writer measures the budget every minute: a judgement older than this is not current.
STORAGE_STALE_S = 600.0


def check_storage(storage: tuple[str, str, float] | None) -> Check:
    """The storage budget as the writer last judged it (common/store/budget.py): its level, and why."""
    if storage is None:
        return Check("storage_budget", Level.OK, "not measured yet (the writer measures it every minute)")
    level, detail, age_s = storage
    if age_s > STORAGE_STALE_S:
        return Check("storage_budget", Level.WARN, f"last measured {_span(age_s)} ago: {detail}", level)
    return Check("storage_budget", {"ok": Level.OK, "warn": Level.WARN}.get(level, Level.CRIT), detail, level)


#: The archive's disk: WARN below this much free space, CRIT below the second (bytes). A local archive is the
#: kept copy of every dropped day, so the service never deletes it: it can only say when the disk runs short.
ARCHIVE_FREE_WARN, ARCHIVE_FREE_CRIT = 1 << 30, 256 << 20


def check_archive(archive: ArchiveFacts) -> Check:
    """The archive's size, and the free space left on its disk."""
    held = f"{archive.files:,} files, {archive.bytes / (1 << 20):,.1f} MB in {archive.where}"
    if archive.bucket:
        held = f"in {archive.bucket}; staging: {held}"
    detail = f"{held}; {archive.free_bytes / (1 << 30):,.1f} GB free on its disk"
    if archive.free_bytes < ARCHIVE_FREE_WARN:
        level = Level.CRIT if archive.free_bytes < ARCHIVE_FREE_CRIT else Level.WARN
        return Check("archive", level, detail + ("" if archive.bucket else ": free space, or set ARCHIVE_S3_URL"),
                     archive.free_bytes)
    return Check("archive", Level.OK, detail, archive.bytes)


def check_actors(actors: Mapping[str, tuple[str, str]] | None, error: str) -> list[Check]:
    checks = []
    for actor in ACTORS:
        name = f"actor:{actor}"
        if actors is None:
            checks.append(Check(name, Level.CRIT, error))
        elif actor not in actors:
            checks.append(Check(name, Level.CRIT, "not in supervisord's configuration"))
        else:
            state, description = actors[actor]
            level = SUPERVISOR_STATES.get(state, Level.CRIT)
            checks.append(Check(name, level, f"{state} ({description})" if description else state, state))
    return checks


def evaluate(facts: Facts, now: datetime, schedules: Mapping[str, MarketSchedule | None],
             option_store_interval: float = 0.0) -> list[Check]:
    """Every check, in the order the table shows them. Option snapshots (OPTION_STORE_INTERVAL) are stored an
    interval after their quotes: their table's freshness allows for it."""
    checks = [check_database(facts.database_error)]
    if facts.database is not None:
        db = facts.database
        slack = {"option_prices": option_store_interval}
        checks += [check_freshness(table, db.ages.get(table), open_for(schedules[table], now), slack.get(table, 0.0))
                   for table in FRESHNESS]
        checks += [check_error_rate(db.activity), check_ingest(db.ingest_status), check_entitlement(db.entitlement),
                   check_lag(db.lags), check_storage(db.storage)]
    if facts.archive is not None:
        checks.append(check_archive(facts.archive))
    return checks + check_actors(facts.actors, facts.supervisor_error)


def overall(checks: Iterable[Check]) -> Level:
    return max((check.level for check in checks), default=Level.OK)


def render_table(checks: list[Check]) -> str:
    width = max(len("CHECK"), *(len(check.name) for check in checks))
    lines = [f"{'CHECK':<{width}}  LEVEL  DETAIL"]
    lines += [f"{check.name:<{width}}  {check.level.name:<5}  {check.detail}" for check in checks]
    return "\n".join([*lines, "", f"status: {overall(checks).name}"])


def render_json(checks: list[Check]) -> str:
    return json.dumps({"status": overall(checks).name, "checks": [check.as_dict() for check in checks]})


# ---- the shell ----------------------------------------------------------------------------------------------


def read_database(url: str) -> DatabaseFacts:
    """One short session; ages are the server's own clock minus inserted_at, so no clock skew enters."""
    newest = ", ".join(f"(SELECT extract(epoch FROM clock_timestamp() - inserted_at)::float8 FROM public.{table}"
                       " ORDER BY id DESC LIMIT 1)" for table in FRESHNESS)
    with open_connection(url, "streaming-health", statement_timeout_ms=STATEMENT_TIMEOUT_MS,
                         connect_timeout_s=CONNECT_TIMEOUT_S) as conn:
        ages = conn.execute(f"SELECT {newest}").fetchone()
        activity = conn.execute(
            "SELECT actor, sum(records_processed)::bigint, sum(error_count)::bigint FROM public.streaming_metrics"
            " WHERE timestamp > now() - %s GROUP BY actor", (WINDOW,)).fetchall()
        status = conn.execute(
            "SELECT service_status, entitlement, delayed_services FROM public.streaming_metrics"
            " WHERE actor = 'ingest' AND timestamp > now() - %s ORDER BY timestamp DESC LIMIT 1", (WINDOW,)).fetchone()
        lags = conn.execute(
            "SELECT DISTINCT ON (stream) stream, lag_records, lag_seconds FROM public.stream_metrics"
            " WHERE timestamp > now() - %s ORDER BY stream, timestamp DESC", (WINDOW,)).fetchall()
        storage = conn.execute(
            "SELECT level, detail, extract(epoch FROM clock_timestamp() - checked_at)::float8 FROM public.storage_budget"
            " ORDER BY array_position(ARRAY['crit', 'warn', 'ok'], level), checked_at DESC LIMIT 1").fetchone()
    return DatabaseFacts(
        ages=dict(zip(FRESHNESS, ages)),
        activity={actor: (records, errors) for actor, records, errors in activity},
        ingest_status=status[0] if status else None,
        entitlement=(status[1], status[2]) if status and (status[1] or status[2]) else None,
        lags={stream: (records, seconds) for stream, records, seconds in lags},
        storage=tuple(storage) if storage else None,
    )


def read_supervisor(socket_path: Path) -> dict[str, tuple[str, str]]:
    """Every program's state, over supervisord's XML-RPC on its unix socket (as supervisorctl asks)."""
    transport = SupervisorTransport(None, None, serverurl=f"unix://{socket_path}")
    server = xmlrpc.client.ServerProxy("http://127.0.0.1", transport)
    previous = socket.getdefaulttimeout()
    socket.setdefaulttimeout(SUPERVISOR_TIMEOUT_S)  # the transport's socket has no timeout of its own
    try:
        infos = server.supervisor.getAllProcessInfo()
    finally:
        socket.setdefaulttimeout(previous)
        transport.close()
    return {info["name"]: (info["statename"], info["description"]) for info in infos}


def read_archive(directory: Path, bucket: str | None) -> ArchiveFacts:
    """The archive directory's files and bytes (none yet: zero), and the free space of the disk it is on."""
    files = [path for path in directory.rglob("*") if path.is_file()] if directory.is_dir() else []
    disk = directory
    while not disk.exists() and disk != disk.parent:
        disk = disk.parent
    return ArchiveFacts(str(directory), sum(path.stat().st_size for path in files), len(files),
                        shutil.disk_usage(disk).free, bucket)


def gather(database_url: str, socket_path: Path, archive: ArchiveFacts | None = None) -> Facts:
    database, database_error = None, ""
    try:
        database = read_database(database_url)
    except psycopg.Error as error:
        database_error = reason(error, database_url, limit=None)
    try:
        return Facts(database, database_error, read_supervisor(socket_path), archive=archive)
    except (OSError, http.client.HTTPException, xmlrpc.client.Error) as error:
        return Facts(database, database_error, None, f"supervisord not reachable at {socket_path}: {error}",
                     archive=archive)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="streaming-health", description=__doc__.splitlines()[0])
    parser.add_argument("--json", action="store_true", help='print {"status": …, "checks": […]} instead of a table')
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr)
    try:
        config = load()
    except ConfigError as error:
        checks = [Check("config", Level.CRIT, str(error))]
    else:
        facts = gather(config.database_url, config.run_dir / "supervisor.sock",
                       read_archive(config.archive_dir, config.archive_s3_url))
        schedules = schedules_for(config.market_sessions, config.market_hours == "always",
                                  regular_extra_for(config.tickers))
        checks = evaluate(facts, datetime.now(timezone.utc), schedules, config.option_store_interval)
    print(render_json(checks) if args.json else render_table(checks))
    return int(overall(checks))


if __name__ == "__main__":
    sys.exit(main())
