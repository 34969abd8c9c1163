"""indicator: SMA9 and session VWAP for every trade ingest publishes.

It takes ingest's trade and bar frames in the order ingest received them and
publishes, per input frame, one `indicator` frame per symbol. On SIGTERM it
drains until ingest has said goodbye (or gone quiet), publishes, and exits 0.
"""

from __future__ import annotations

import time

import msgspec

from common import config as configuration
from common import log
from common.bus import Gap, Publisher, Subscriber
from common.indicators import IndicatorEngine
from common.messages import Envelope, Heartbeat
from common.shutdown import Shutdown
from common.stats import ActorStats

#: On shutdown: wait for ingest's final heartbeat, give up on a silent one after
#: DRAIN_QUIET, and stop after DRAIN_LIMIT whatever happens (within stopwaitsecs).
DRAIN_QUIET = 2.0
DRAIN_LIMIT = 10.0
CONSUMER_WAIT = 30.0


def main() -> None:
    config = configuration.load()
    config.ensure_dirs()
    logger = log.setup("indicator")
    shutdown = Shutdown()
    stats = ActorStats("indicator", config.stats_interval)
    engine = IndicatorEngine()
    publisher = Publisher(config, "indicator")
    missing = publisher.wait_for_subscribers(["writer"], CONSUMER_WAIT)
    if missing:
        logger.warning("publishing before these consumers subscribed", extra={"missing": missing})
    subscriber = Subscriber(config, "indicator")
    subscriber.subscribe("ingest", "trade")
    subscriber.subscribe("ingest", "bar")

    def lost(gap: Gap) -> None:
        stats.gaps += 1
        logger.warning(
            "frames lost on the bus",
            extra={"stream": gap.stream, "epoch": gap.epoch, "first": gap.first, "last": gap.last},
        )

    def accept(frame: Envelope | Heartbeat | None) -> None:
        if not subscriber.admit(frame, lost):
            return
        started = time.perf_counter_ns()
        result = engine.on_records(frame.records)
        for record, reason in result.rejected:
            stats.errors += 1
            logger.warning(
                "record rejected",
                extra={"reason": reason, "stream": frame.stream, "record": msgspec.structs.asdict(record)},
            )
        for symbol, values in result.values.items():
            publisher.send("indicator", symbol, values)
            stats.records_out += len(values)
        stats.records_in += len(frame.records)
        stats.batch(len(frame.records), started)

    logger.info("computing indicators", extra={"endpoint": config.endpoint("indicator")})
    stats.status = "running"
    while not shutdown.requested:
        accept(subscriber.recv(0.2))
        stats.maybe_publish(publisher)
        publisher.tick()

    stats.status = "stopping"
    subscriber.drain(accept, DRAIN_QUIET, DRAIN_LIMIT)
    stats.status = "stopped"
    stats.maybe_publish(publisher, force=True)
    logger.info("stopped", extra={"records_in": stats.records_in, "records_out": stats.records_out})
    publisher.close()
    subscriber.close()


if __name__ == "__main__":
    main()
