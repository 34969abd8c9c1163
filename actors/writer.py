"""writer: everything that is stored, exactly once, COPYed into Postgres.

It subscribes to every stream `common/streams.py` gives a table (trades,
minute bars, indicator values, option quotes made rows, streaming metrics and lags;
level-one quotes with STORE_QUOTES), batches them by
BATCH_SIZE and BATCH_INTERVAL and writes each batch, with the (stream,
epoch, seq) it reaches, in one COPY and one statement (`common/store/db.py`).

Exactly-once is the ZeroMQ guide's Clone pattern with the journal as the
snapshot: on start, after a database outage and whenever a live frame
shows that something is missing, the writer reloads its committed offsets
and replays the publishers' journals after them; live frames it already has
are discarded. A sampled stream (option quotes, `OPTION_STORE_INTERVAL`) is
stored as snapshots (`common/store/snapshots.py`): its offset commits where
the open interval can be rebuilt from, so a restart stores the same
snapshots. Rows the table will never accept go to a dead-letter file
with the reason, so one bad row never blocks the stream. It keeps the
tables' daily partitions (sql/022) a week ahead, on connecting and hourly,
and the storage budget (`common/store/budget.py`): it measures the database
every minute and, when days must go, starts the command that archives and
drops them. On SIGTERM it drains the bus, flushes, and exits.
"""

from __future__ import annotations

import json
import random
import subprocess
import sys
import time
from collections.abc import Callable
from datetime import datetime, timedelta, timezone
from typing import Any

import msgspec
import psycopg

from common.actor import Actor, Work
from common.feed.market_hours import NEW_YORK
from common.store import budget, db
from common.store.batching import Batcher
from common.store.connection import reason
from common.store.snapshots import Snapshots
from common.streams import followed, stored
from common.transport.delivery import Follower
from common.transport.messages import Envelope, Heartbeat, StorageBudget
from common.transport.topics import publisher_of

CONSUMER = "writer"
BACKOFF_FIRST, BACKOFF_CAP = 0.2, 10.0
#: Errors a retry cannot fix: the row itself is wrong for its table.
REJECTED = (psycopg.errors.DataError, psycopg.errors.IntegrityError)
#: Partitions are kept from yesterday to this many New York days ahead, checked this often (seconds).
PARTITION_DAYS_AHEAD, PARTITION_CHECK_EVERY = 7, 3600.0
#: The storage budget is measured this often (seconds): two catalog reads and one row written. The keeper, which
#: archives and drops, is started at most this often (seconds): a day it could not archive is not retried each minute.
BUDGET_CHECK_EVERY, KEEPER_EVERY = 60.0, 300.0


def upkeep_failed(error: psycopg.Error, connection: psycopg.Connection | None) -> bool:
    """A failure of partition upkeep itself, with the connection still good: a warning, never a stop. A lost
    connection is the database away, which the caller handles as every other statement's."""
    return connection is not None and not connection.closed and not connection.broken


class DatabaseAway(Exception):
    """The database failed in a way that may pass: reconnect and catch up. Logged as a warning: the journal
    still holds every frame of the batch, so nothing is lost (an ERROR line means something was)."""


class Writer(Work):
    """Every stored stream in, batches COPYed out; a database that goes away is waited for and caught up."""

    #: A frame is done once committed: `flush` shares the positions, never the tick.
    done_when_taken = False
    recoverable = (DatabaseAway,)
    #: Every upstream's goodbye is waited for longer: each may still be flushing its own.
    drain_limit = 30.0

    def __init__(self, actor: Actor):
        self.actor = actor
        self.config = actor.config
        self.stats = actor.stats
        self.log = actor.log
        kinds = stored(self.config.opted_in)
        self.subscriptions = tuple((kind.publisher, kind.record) for kind in kinds)
        self.follows = followed(self.config.deployment, self.config.opted_in)
        #: Per stored record type: its table, and what makes a row of a record (the registry's `row`).
        self.rows = {kind.record: (kind.table, kind.row) for kind in kinds}
        #: Per sampled stream: its snapshot interval in ns, its publisher, its table and row (a setting of 0: every
        #: record stored, not sampled).
        self.sampled = {kind.stream(self.config.deployment):
                        (round(self.config.sampling[kind.sampled] * 1e9), kind.publisher, kind.table, kind.row)
                        for kind in kinds if kind.sampled and self.config.sampling[kind.sampled]}
        self.snapshots: dict[str, Snapshots] = {}
        self.batcher = Batcher(self.config.batch_size, self.config.batch_interval)
        self.follower: Follower | None = None
        self.connection: psycopg.Connection | None = None
        self.dead_letter = self.config.data_dir / "dead-letter" / "writer.jsonl"
        self.offsets_file = self.config.offsets_file(CONSUMER)
        self.partitions_due = 0.0
        self.budget_due = 0.0
        #: The running archive-and-drop command (`python -m common.store.budget`), if any, and when it may next start.
        self.keeper: subprocess.Popen | None = None
        self.keeper_due = 0.0
        #: The instant the last keeper started was to trim today before: it is started again for the next hour.
        self.trimmed_before: datetime | None = None

    # --- the database ------------------------------------------------------

    def connect(self) -> bool:
        """Connect and reload committed offsets, backing off (with jitter) while that fails.

        Returns False if asked to stop meanwhile.
        """
        delay = BACKOFF_FIRST
        while not self.actor.shutdown.requested:
            try:
                self.connection = db.connect(self.config.database_url, simulated=self.config.uses_simulator)
                committed = db.load_offsets(self.connection, CONSUMER)
                self.follower.restart(committed)
                self.snapshots = {name: Snapshots(interval, committed.get(name))
                                  for name, (interval, *_) in self.sampled.items()}
                self._partitions_ahead()
                return True
            except psycopg.Error as error:
                self.stats.status = "waiting_for_database"
                self.log.warning("database unavailable; retrying", extra={
                    "reason": reason(error, self.config.database_url), "retry_in_s": round(delay, 2)})
                time.sleep(delay)
                delay = min(delay * 2, BACKOFF_CAP) * random.uniform(0.8, 1.2)
        return False

    def flush(self) -> None:
        if not len(self.batcher):
            return
        started = time.perf_counter_ns()
        batch = self.batcher.take()
        offsets = self._held(self.follower.positions.committed())
        size = sum(map(len, batch.values()))
        inserted = self._write(batch, offsets)
        self.stats.records_out += inserted
        self.stats.batch(size, started)
        self._share_offsets()

    def _partitions_ahead(self) -> None:
        """Yesterday's to a week ahead's partitions, made where missing: a day's first batch finds its own
        (a batch for a day without one is mended in `db.write_batches`, at the cost of a retry)."""
        today = datetime.now(NEW_YORK).date()
        last = today + timedelta(days=PARTITION_DAYS_AHEAD)
        try:
            made = db.create_partitions(self.connection, today - timedelta(days=1), last)
        except psycopg.Error as error:
            if not upkeep_failed(error, self.connection):
                raise
            # A reader's transaction held a table past the function's lock_timeout, or the function failed (an
            # old schema, a partition someone made by hand): a week ahead leaves time, and storing goes on (a
            # batch for a day without a partition is mended in `db.write_batches`, or said there).
            self.partitions_due = time.monotonic() + PARTITION_CHECK_EVERY / 12
            self.log.warning("daily partitions not made yet; storing goes on, trying again in 5 minutes",
                             extra={"reason": reason(error, self.config.database_url)})
            return
        self.partitions_due = time.monotonic() + PARTITION_CHECK_EVERY
        if made:
            self.log.info("daily partitions made ahead", extra={"partitions": made, "through": last.isoformat()})

    def _held(self, offsets: dict) -> dict:
        """The offsets to commit: a sampled stream's is where its open interval would be rebuilt from."""
        for name, snapshots in self.snapshots.items():
            if snapshots.resume_after is None:
                offsets.pop(name, None)
            else:
                offsets[name] = snapshots.resume_after
        return offsets

    def _keep_budget(self) -> None:
        """Measure the storage budget (health reads the row it leaves), and start the keeper when days must go.
        A failure here is a warning: storing goes on, and the next check tries again."""
        self.budget_due = time.monotonic() + BUDGET_CHECK_EVERY
        budget_bytes, now = self.config.storage_budget_mb * budget.MB, datetime.now(timezone.utc)
        try:
            verdict, size, days = budget.measure(self.connection, self.config.deployment, budget_bytes, now)
        except psycopg.Error as error:
            self.log.warning("the storage budget could not be measured; trying again in a minute",
                             extra={"reason": reason(error, self.config.database_url)})
            return
        before = self.stats.storage
        self.stats.storage = StorageBudget(size, budget_bytes, verdict.bytes_per_day or 0,
                                           -1.0 if verdict.days_left is None else verdict.days_left, verdict.level)
        if verdict.level != "ok" and (before is None or before.level != verdict.level):
            self.log.warning("storage budget " + verdict.level, extra={"detail": verdict.detail})
        if self.keeper is not None:
            if self.keeper.poll() is None:
                return
            if self.keeper.returncode:
                self.log.warning("the archive-and-drop command failed; it runs again at the next check",
                                 extra={"exit_code": self.keeper.returncode})
                self.trimmed_before = None
            self.keeper = None
        today = now.astimezone(NEW_YORK).date()
        due = budget.choose(days, size, budget_bytes, today, self.config.retention_days,
                            self.config.metrics_retention_days, verdict.bytes_per_day)
        cut = budget.trim_before(now) if budget.must_trim(days, size, budget_bytes, today) else None
        trim = cut is not None and (self.trimmed_before is None or cut > self.trimmed_before)
        if (due or trim) and time.monotonic() >= self.keeper_due:
            self.log.info("archiving and dropping past days" if due else "archiving and trimming today's older hours",
                          extra={"partitions": len(due), "bytes": sum(day.bytes for day in due),
                                 "before": cut and cut.isoformat(), "detail": verdict.detail})
            self.keeper = subprocess.Popen([sys.executable, "-m", "common.store.budget"], stdin=subprocess.DEVNULL)
            self.keeper_due = time.monotonic() + KEEPER_EVERY
            self.trimmed_before = cut

    def _share_offsets(self) -> None:
        """Only committed positions are shared: with nothing uncommitted, that is all of them. What a sampled
        stream's open interval holds is shared as held: the journal keeps it for a replay."""
        if not self.follower.positions.uncommitted:
            self.follower.share(self.offsets_file, held=self._held({}))

    def _write(self, batches: dict[str, list[tuple]], offsets: dict) -> int:
        """Write rows (by table) and offsets; bisect out rows the table rejects. Rows inserted."""
        try:
            inserted = db.write_batches(self.connection, batches, CONSUMER, offsets)
        except REJECTED as error:
            rows = [(table, row) for table, held in batches.items() for row in held]
            if len(rows) == 1:
                self._quarantine(*rows[0], error)
                db.write_batches(self.connection, {}, CONSUMER, offsets)
                return 0
            middle = len(rows) // 2
            return self._write(by_table(rows[:middle]), {}) + self._write(by_table(rows[middle:]), offsets)
        except psycopg.Error as error:
            raise DatabaseAway(reason(error, self.config.database_url)) from error
        total, size = sum(inserted.values()), sum(map(len, batches.values()))
        if total < size:
            self.log.warning("rows already stored were skipped",
                             extra={"duplicates": size - total, "inserted": inserted})
        return total

    def _quarantine(self, table: str, row: tuple, error: Exception) -> None:
        self.stats.errors += 1
        self.dead_letter.parent.mkdir(parents=True, exist_ok=True)
        entry = {"table": table, "row": list(row), "reason": str(error).strip(), "at_ns": time.time_ns()}
        with self.dead_letter.open("a") as letters:
            letters.write(json.dumps(entry, default=repr) + "\n")
        self.log.error("row rejected by the database, quarantined",
                       extra={"table": table, "reason": entry["reason"], "dead_letter": str(self.dead_letter)})

    # --- frames --------------------------------------------------------------

    def take(self, frame: Envelope) -> None:
        """A frame holds records of one kind: one table, its rows added whole."""
        if not frame.records:
            return
        table, row = self.rows[type(frame.records[0])]
        self.stats.records_in += len(frame.records)
        snapshots = self.snapshots.get(frame.stream)
        if snapshots is None:
            rows = self._rows(table, row, frame.records)
        else:
            rows = self._snapshot_rows(table, row,
                                       snapshots.add(frame.records, (frame.epoch, frame.seq), frame.sent_ns))
        if rows:
            self.batcher.add(table, rows, self.batcher.waiting_since(time.monotonic(),
                                                                     (time.time_ns() - frame.sent_ns) / 1e9))
        self._close_quiet(publisher_of(frame.stream), frame.sent_ns)
        if self.batcher.full():
            self.flush()

    def heard(self, beat: Heartbeat) -> None:
        self._close_quiet(beat.publisher, beat.sent_ns)
        if self.batcher.full():
            self.flush()

    def _rows(self, table: str, row: Callable[..., msgspec.Struct] | None, records: list) -> list[tuple]:
        """The table rows of a frame's records; a record its row cannot be made of is quarantined, never retried
        (a replay would fail on it again and stop the writer for good)."""
        if row is None:
            return list(map(msgspec.structs.astuple, records))
        rows = []
        for record in records:
            try:
                rows.append(msgspec.structs.astuple(row(record)))
            except (ValueError, ArithmeticError) as error:
                self._quarantine(table, msgspec.structs.astuple(record), error)
        return rows

    def _snapshot_rows(self, table: str, row: Callable[..., msgspec.Struct], closed: list) -> list[tuple]:
        """The rows of closed snapshots, each stamped with its interval's start (in ms, as Schwab's times)."""
        rows = []
        for start_ns, record in closed:
            try:
                rows.append(msgspec.structs.astuple(row(record, start_ns // 1_000_000)))
            except (ValueError, ArithmeticError) as error:
                self._quarantine(table, msgspec.structs.astuple(record), error)
        return rows

    def _close_quiet(self, publisher: str, sent_ns: int) -> None:
        """A quiet sampled stream's open interval, closed once its publisher's later frames or heartbeats (sent at
        `sent_ns`) show it is past (the session over, the feed away; `Snapshots.close_quiet`)."""
        for name, snapshots in self.snapshots.items():
            _, sampled_by, table, row = self.sampled[name]
            if sampled_by == publisher and (closed := snapshots.close_quiet(sent_ns)):
                if rows := self._snapshot_rows(table, row, closed):
                    self.batcher.add(table, rows, time.monotonic())

    # --- the loop (`Actor.run` turns it) -------------------------------------

    def start(self, follower: Follower | None) -> bool:
        self.follower = follower
        if not self.reconnect():
            return False
        self.log.info("writing", extra={"batch_size": self.config.batch_size,
                                        "batch_interval_s": self.config.batch_interval,
                                        "replayed": self.follower.replayed})
        return True

    def reconnect(self) -> bool:
        """(Re)connect, then replay every journal from the committed offsets.

        What was batched but not committed is dropped: the journal has it.
        """
        while True:
            if self.connection is not None:
                self.connection.close()
            self.batcher.take()
            if not self.connect():
                return False
            try:
                self.follower.catch_up_all()
                self.flush()
            except DatabaseAway as error:
                self.log.warning("database failed during catch-up; retrying", extra={"reason": str(error)})
                continue
            self.stats.status = "running"
            return True

    def recover(self, error: Exception) -> bool:
        self.stats.errors += 1
        self.log.warning("database write failed; reconnecting and replaying from the journal",
                         extra={"reason": str(error)})
        return self.reconnect()

    def gathering(self) -> float | None:
        """With a batch pending, rest until it is due and then take everything queued meanwhile."""
        return self.batcher.deadline()

    def duty(self, now: float) -> None:
        if self.batcher.due(now):
            self.flush()
        if now >= self.partitions_due:
            try:
                self._partitions_ahead()
            except psycopg.Error as error:
                raise DatabaseAway(reason(error, self.config.database_url)) from error
        if now >= self.budget_due:
            self._keep_budget()

    def stop(self) -> None:
        self.flush()

    def close(self) -> None:
        if self.keeper is not None and self.keeper.poll() is None:
            self.keeper.terminate()  # what it has not dropped stays, and is tried again next time
            self.keeper.wait()
        if self.connection is not None:
            self.connection.close()


def by_table(rows: list[tuple[str, tuple]]) -> dict[str, list[tuple]]:
    """(table, row) pairs regrouped by table, in order: the halves of a bisected batch."""
    batches: dict[str, list[tuple]] = {}
    for table, row in rows:
        batches.setdefault(table, []).append(row)
    return batches


def main() -> None:
    actor = Actor(CONSUMER)
    actor.run(Writer(actor))


if __name__ == "__main__":
    main()
