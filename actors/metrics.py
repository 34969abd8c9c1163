"""metrics: every actor's counters, rolled up into `streaming_metrics` rows.

It listens to each actor's `metric` frames and, every METRICS_INTERVAL,
publishes one row per actor for the writer to store.
"""

from __future__ import annotations

import time

from common import config as configuration
from common import log
from common.bus import Gap, Publisher, Subscriber
from common.config import ACTORS
from common.messages import MetricSample
from common.metrics import MetricsRollup
from common.shutdown import Shutdown
from common.stats import ActorStats

CONSUMER_WAIT = 30.0


def main() -> None:
    config = configuration.load()
    config.ensure_dirs()
    logger = log.setup("metrics")
    shutdown = Shutdown()
    stats = ActorStats("metrics", config.stats_interval)
    publisher = Publisher(config, "metrics")
    missing = publisher.wait_for_subscribers(["writer"], CONSUMER_WAIT)
    if missing:
        logger.warning("publishing before these consumers subscribed", extra={"missing": missing})
    subscriber = Subscriber(config, "metrics")
    for actor in ACTORS:
        if actor != "metrics":
            subscriber.subscribe(actor, "metric")
    def lost(gap: Gap) -> None:
        stats.gaps += 1
        logger.warning("metric samples lost on the bus", extra={"stream": gap.stream, "first": gap.first, "last": gap.last})

    rollup = MetricsRollup(stale_after_ns=int(3 * config.stats_interval * 1e9))
    next_rollup = time.monotonic() + config.metrics_interval
    stats.status = "running"
    while not shutdown.requested:
        frame = subscriber.recv(min(0.2, max(0.0, next_rollup - time.monotonic())))
        if subscriber.admit(frame, lost):
            for sample in frame.records:
                if isinstance(sample, MetricSample):
                    rollup.observe(sample)
            stats.records_in += len(frame.records)
        if time.monotonic() >= next_rollup:
            started = time.perf_counter_ns()
            rollup.observe(stats.sample())
            rows = rollup.rows(time.time_ns())
            for row in rows:
                publisher.send("streaming_metric", row.actor, [row])
            stats.records_out += len(rows)
            stats.batch(len(rows), started)
            next_rollup += config.metrics_interval
        publisher.tick()
    logger.info("stopped")
    publisher.close()
    subscriber.close()


if __name__ == "__main__":
    main()
