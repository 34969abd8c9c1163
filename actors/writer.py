"""writer: everything that is stored, batched and COPYed into Postgres.

It subscribes to trades (ingest), indicator values (indicator), option rows
(options) and streaming metrics (metrics), batches them by BATCH_SIZE and
BATCH_INTERVAL and writes each batch in one transaction through a staging
table, so that a row colliding on a unique key never aborts its batch. On
SIGTERM it drains the socket, flushes what it holds, and exits.
"""

from __future__ import annotations

import logging
import time

import msgspec
import psycopg

from common import db
from common.actor import Actor
from common.batching import Batcher
from common.messages import Envelope, EquityTrade, Heartbeat, IndicatorValue, OptionRow, StreamingMetric
from common.shutdown import Shutdown

TABLE_OF = {
    EquityTrade: "equity_data",
    IndicatorValue: "indicators",
    OptionRow: "option_prices",
    StreamingMetric: "streaming_metrics",
}
SOURCES = (("ingest", "trade"), ("indicator", "indicator"), ("options", "option_row"), ("metrics", "streaming_metric"))
#: On shutdown: wait for every upstream's goodbye, give up on a silent one after
#: DRAIN_QUIET, and stop after DRAIN_LIMIT whatever happens (within stopwaitsecs).
DRAIN_QUIET = 2.0
DRAIN_LIMIT = 30.0


def connect_when_ready(url: str, shutdown: Shutdown, logger: logging.Logger) -> psycopg.Connection | None:
    """Wait (backing off to 5 s) until the database is up and migrated.

    The writer may start before Postgres does, or before `make migrate` ran;
    neither is worth a crash loop. Returns None if asked to stop meanwhile.
    """
    delay = 0.2
    while not shutdown.requested:
        try:
            return db.connect(url)
        except psycopg.Error as error:
            logger.warning("waiting for the database (is it up and migrated?)", extra={"reason": str(error).strip()[:300]})
            time.sleep(delay)
            delay = min(delay * 2, 5.0)
    return None


def main() -> None:
    actor = Actor("writer")
    config, stats, logger = actor.config, actor.stats, actor.log
    subscriber = actor.subscriber()
    for source, kind in SOURCES:
        subscriber.subscribe(source, kind)
    connection = connect_when_ready(config.database_url, actor.shutdown, logger)
    if connection is None:
        actor.stopped()
        return
    batcher = Batcher(config.batch_size, config.batch_interval)
    logger.info("writing", extra={"batch_size": config.batch_size, "batch_interval_s": config.batch_interval})

    def flush() -> None:
        started = time.perf_counter_ns()
        batch = batcher.take()
        size = sum(map(len, batch.values()))
        inserted = db.write_batches(connection, batch)
        stats.records_out += sum(inserted.values())
        duplicates = size - sum(inserted.values())
        if duplicates:
            logger.warning("rows already stored were skipped", extra={"duplicates": duplicates, "inserted": inserted})
        stats.batch(size, started)

    def accept(frame: Envelope | Heartbeat | None) -> None:
        if not subscriber.admit(frame, actor.lost):
            return
        now = time.monotonic()
        for record in frame.records:
            batcher.add(TABLE_OF[type(record)], msgspec.structs.astuple(record), now)
        stats.records_in += len(frame.records)

    stats.status = "running"
    while not actor.shutdown.requested:
        deadline = batcher.deadline()
        timeout = 0.2 if deadline is None else max(0.0, min(0.2, deadline - time.monotonic()))
        accept(subscriber.recv(timeout))
        if batcher.due(time.monotonic()):
            flush()
        actor.tick()

    stats.status = "stopping"
    subscriber.drain(accept, DRAIN_QUIET, DRAIN_LIMIT)
    if len(batcher):
        flush()
    actor.stopped()
    subscriber.close()
    connection.close()


if __name__ == "__main__":
    main()
