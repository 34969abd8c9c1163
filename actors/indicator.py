"""indicator: SMA9 and session VWAP for every trade ingest publishes.

It takes ingest's trade and bar frames in the order ingest received them and
publishes, per input frame, one `indicator` frame. It starts by
replaying ingest's journal, so that after a restart its state, and so its
first values, equal an uninterrupted run's; frames lost on the bus are
filled from the journal too. On SIGTERM it drains until ingest has said
goodbye (or gone quiet), publishes, and exits 0.
"""

from __future__ import annotations

import time

import msgspec

from common.actor import Actor
from common.analytics.indicators import IndicatorEngine
from common.transport.delivery import newest_sent
from common.transport.messages import Envelope, IndicatorValue, Record
from common.transport.streams import stream

#: On shutdown: wait for ingest's final heartbeat, give up on a silent one after
#: DRAIN_QUIET, and stop after DRAIN_LIMIT whatever happens (within stopwaitsecs).
DRAIN_QUIET = 2.0
DRAIN_LIMIT = 10.0


def sent_key(record: Record) -> tuple[str, tuple] | None:
    """An indicator value is identified per symbol by (trade time, day volume)."""
    if isinstance(record, IndicatorValue):
        return record.symbol, (record.trade_time_ms, record.day_volume)
    return None


def main() -> None:
    actor = Actor("indicator", journaled=True)
    stats = actor.stats
    engine = IndicatorEngine()
    published = newest_sent(actor.config.journal_dir("indicator"), sent_key)

    def take(frame: Envelope) -> None:
        started = time.perf_counter_ns()
        result = engine.on_records(frame.records)
        for record, reason in result.rejected:
            stats.errors += 1
            actor.log.warning(
                "record rejected",
                extra={"reason": reason, "stream": frame.stream, "record": msgspec.structs.asdict(record)},
            )
        fresh = [value for symbol, values in result.values.items() for value in values
                 if (value.trade_time_ms, value.day_volume) > published.get(symbol, ())]
        if fresh:
            actor.publisher.send("indicator", fresh)
            stats.records_out += len(fresh)
        stats.records_in += len(frame.records)
        stats.batch(len(frame.records), started)

    deployment = actor.config.deployment
    follower = actor.follow((stream(deployment, "ingest", "trade"), stream(deployment, "ingest", "bar")), take)
    actor.wait_for_consumers("writer")
    subscriber = actor.subscriber()
    subscriber.subscribe("ingest", "trade")
    subscriber.subscribe("ingest", "bar")
    # Rebuild SMA9 and VWAP from what ingest journaled; values already sent are not sent again.
    follower.catch_up_all()

    actor.log.info("computing indicators", extra={"replayed": follower.replayed})
    stats.status = "running"
    while not actor.shutdown.requested:
        follower.accept(subscriber.recv(actor.wait()))
        actor.tick(follower)

    actor.drain(subscriber, follower, DRAIN_QUIET, DRAIN_LIMIT)
    actor.stopped(replayed=follower.replayed)
    subscriber.close()


if __name__ == "__main__":
    main()
