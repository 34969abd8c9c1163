"""metrics: every actor's counters, rolled up into `streaming_metrics` rows.

It listens to each actor's `metric` frames and, every METRICS_INTERVAL,
publishes one row per actor for the writer to store.
"""

from __future__ import annotations

import time

from common.actor import Actor
from common.config import ACTORS
from common.messages import MetricSample
from common.metrics import MetricsRollup


def main() -> None:
    actor = Actor("metrics")
    config, stats = actor.config, actor.stats
    actor.wait_for_consumers("writer")
    subscriber = actor.subscriber()
    for name in ACTORS:
        if name != "metrics":
            subscriber.subscribe(name, "metric")
    rollup = MetricsRollup(stale_after_ns=int(3 * config.stats_interval * 1e9))
    next_rollup = time.monotonic() + config.metrics_interval
    stats.status = "running"
    while not actor.shutdown.requested:
        frame = subscriber.recv(min(0.2, max(0.0, next_rollup - time.monotonic())))
        if subscriber.admit(frame, actor.lost):
            for sample in frame.records:
                if isinstance(sample, MetricSample):
                    rollup.observe(sample)
            stats.records_in += len(frame.records)
        if time.monotonic() >= next_rollup:
            started = time.perf_counter_ns()
            rollup.observe(stats.sample())
            rows = rollup.rows(time.time_ns())
            for row in rows:
                actor.publisher.send("streaming_metric", row.actor, [row])
            stats.records_out += len(rows)
            stats.batch(len(rows), started)
            next_rollup += config.metrics_interval
        actor.publisher.tick()
    actor.stopped()
    subscriber.close()


if __name__ == "__main__":
    main()
