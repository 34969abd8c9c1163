"""indicator: SMA9 and session VWAP for every trade ingest publishes.

It takes ingest's trade and bar frames in the order ingest received them and
publishes, per input frame, one `indicator` frame per symbol. On SIGTERM it
drains until ingest has said goodbye (or gone quiet), publishes, and exits 0.
"""

from __future__ import annotations

import time

import msgspec

from common.actor import Actor
from common.indicators import IndicatorEngine
from common.messages import Envelope, Heartbeat

#: On shutdown: wait for ingest's final heartbeat, give up on a silent one after
#: DRAIN_QUIET, and stop after DRAIN_LIMIT whatever happens (within stopwaitsecs).
DRAIN_QUIET = 2.0
DRAIN_LIMIT = 10.0


def main() -> None:
    actor = Actor("indicator")
    stats = actor.stats
    engine = IndicatorEngine()
    actor.wait_for_consumers("writer")
    subscriber = actor.subscriber()
    subscriber.subscribe("ingest", "trade")
    subscriber.subscribe("ingest", "bar")

    def accept(frame: Envelope | Heartbeat | None) -> None:
        if not subscriber.admit(frame, actor.lost):
            return
        started = time.perf_counter_ns()
        result = engine.on_records(frame.records)
        for record, reason in result.rejected:
            stats.errors += 1
            actor.log.warning(
                "record rejected",
                extra={"reason": reason, "stream": frame.stream, "record": msgspec.structs.asdict(record)},
            )
        for symbol, values in result.values.items():
            actor.publisher.send("indicator", symbol, values)
            stats.records_out += len(values)
        stats.records_in += len(frame.records)
        stats.batch(len(frame.records), started)

    actor.log.info("computing indicators", extra={"endpoint": actor.config.endpoint("indicator")})
    stats.status = "running"
    while not actor.shutdown.requested:
        accept(subscriber.recv(0.2))
        actor.tick()

    stats.status = "stopping"
    subscriber.drain(accept, DRAIN_QUIET, DRAIN_LIMIT)
    actor.stopped()
    subscriber.close()


if __name__ == "__main__":
    main()
