"""metrics: every actor's counters, rolled up into `streaming_metrics` rows.

It listens to each actor's `metric` frames and, every METRICS_INTERVAL,
publishes one row per actor, and one `stream_metrics` row per stream the
writer follows (published vs committed seq, lag in records and seconds),
for the writer to store. It journals what it publishes, as ingest does, so
a writer restart loses no row.

It also serves /metrics (Prometheus), /healthz and the status page on
METRICS_HTTP_HOST:METRICS_HTTP_PORT (common/observe/status_server.py), from
snapshots this loop hands over.
"""

from __future__ import annotations

import time
from pathlib import Path

from common.actor import Actor, wait_until
from common.config import ACTORS
from common.observe.exposition import Board
from common.observe.rollup import LagTracker, MetricsRollup
from common.observe.stats import IDLE_SAMPLES
from common.observe.status_server import StatusServer
from common.transport.delivery import shared_offsets
from common.transport.messages import MetricSample, Position


def writer_position(path: Path) -> tuple[dict[str, Position], tuple[str, ...]]:
    """What the writer has committed and which streams it follows (its offsets file)."""
    shared = shared_offsets(path)
    return ({}, ()) if shared is None else (shared.positions, shared.follows)


def serve(actor: Actor, stale_after_ns: int) -> StatusServer | None:
    """The HTTP side, or None when its port cannot be had: the rollups matter more, so run on without it."""
    config = actor.config
    try:
        server = StatusServer(config, stale_after_ns).start()
    except OSError as error:
        actor.log.error("cannot serve metrics over HTTP", extra={
            "host": config.metrics_http_host, "port": config.metrics_http_port, "reason": str(error)})
        return None
    host, port = server.server_address[:2]
    actor.log.info("serving /metrics, /healthz and the status page", extra={"url": f"http://{host}:{port}/"})
    return server


def main() -> None:
    actor = Actor("metrics", journaled=True)
    config, stats = actor.config, actor.stats
    actor.wait_for_consumers("writer")
    subscriber = actor.subscriber()
    for name in ACTORS:
        if name != "metrics":
            subscriber.subscribe(name, "metric")
    stale_after_ns = int(3 * config.stats_interval * 1e9)
    rollup = MetricsRollup(stale_after_ns=stale_after_ns, source=config.stream_source, deployment=config.deployment)
    lag = LagTracker()
    board, lags = Board(), []
    http = serve(actor, stale_after_ns)
    next_rollup = time.monotonic() + config.metrics_interval
    next_sample = time.monotonic()
    heard = False  # any actor's counters since metrics last sampled its own
    stats.status = "running"
    while not actor.shutdown.requested:
        frame = subscriber.recv(wait_until(next_rollup, next_sample, actor.publisher.heartbeat_due))
        changed = False  # the HTTP snapshot is rebuilt once per STATS_INTERVAL, not per sample received
        if subscriber.admit(frame, actor.lost):
            for sample in frame.records:
                if isinstance(sample, MetricSample):
                    rollup.observe(sample)
                    lag.observe(sample)
                    board.observe(sample)
            stats.records_in += len(frame.records)
            heard = True
        if time.monotonic() >= next_sample:
            board.observe(stats.sample())
            # Like every actor's (common/observe/stats.py): while nobody reports, a fifth as often.
            next_sample = time.monotonic() + config.stats_interval * (1 if heard else IDLE_SAMPLES)
            heard, changed = False, True
        if time.monotonic() >= next_rollup:
            started = time.perf_counter_ns()
            now = time.time_ns()
            rollup.observe(stats.sample())
            rows = rollup.rows(now)
            if rows:
                actor.publisher.send("streaming_metric", rows)
            lags = lag.rows(now, *writer_position(config.offsets_file("writer")))
            if lags:
                actor.publisher.send("stream_lag", lags)
            stats.records_out += len(rows) + len(lags)
            stats.batch(len(rows) + len(lags), started)
            next_rollup += config.metrics_interval
            changed = True
        if http is not None and changed:
            http.snapshot = board.snapshot(lags)
        actor.publisher.tick()
    if http is not None:
        http.close()
    actor.stopped()
    subscriber.close()


if __name__ == "__main__":
    main()
