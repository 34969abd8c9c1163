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

from common.actor import Actor, Work
from common.config import ACTORS
from common.observe.exposition import Board
from common.observe.rollup import LagTracker, MetricsRollup
from common.observe.stats import IDLE_SAMPLES
from common.observe.status_server import StatusServer
from common.transport.delivery import shared_offsets
from common.transport.messages import Envelope, MetricSample, Position, StreamLag


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


class Rollups(Work):
    """Every other actor's counters in; per METRICS_INTERVAL, `streaming_metric` and `stream_lag` rows out,
    and the HTTP side's snapshot renewed once per STATS_INTERVAL, not per sample."""

    subscriptions = tuple((name, MetricSample) for name in ACTORS if name != "metrics")
    consumers = ("writer",)

    def __init__(self, actor: Actor):
        self.actor = actor
        config = actor.config
        stale_after_ns = int(3 * config.stats_interval * 1e9)
        self.rollup = MetricsRollup(stale_after_ns=stale_after_ns, source=config.stream_source,
                                    deployment=config.deployment)
        self.lag = LagTracker()
        self.board: Board = Board()
        self.lags: list[StreamLag] = []
        self.http = serve(actor, stale_after_ns)
        self.next_rollup = time.monotonic() + config.metrics_interval
        self.next_sample = time.monotonic()
        self.heard = False  # any actor's counters since metrics last sampled its own

    def take(self, frame: Envelope) -> None:
        for sample in frame.records:
            if isinstance(sample, MetricSample):
                self.rollup.observe(sample)
                self.lag.observe(sample)
                self.board.observe(sample)
        self.actor.stats.records_in += len(frame.records)
        self.heard = True

    def due(self) -> float:
        return min(self.next_rollup, self.next_sample)

    def duty(self, now: float) -> None:
        config, stats, changed = self.actor.config, self.actor.stats, False
        if now >= self.next_sample:
            self.board.observe(stats.sample())
            # Like every actor's (common/observe/stats.py): while nobody reports, a fifth as often.
            self.next_sample = now + config.stats_interval * (1 if self.heard else IDLE_SAMPLES)
            self.heard, changed = False, True
        if now >= self.next_rollup:
            self.roll_up()
            self.next_rollup += config.metrics_interval
            changed = True
        if self.http is not None and changed:
            self.http.snapshot = self.board.snapshot(self.lags)

    def roll_up(self) -> None:
        stats, started, now = self.actor.stats, time.perf_counter_ns(), time.time_ns()
        self.rollup.observe(stats.sample())
        rows = self.rollup.rows(now)
        if rows:
            self.actor.publisher.send(rows)
        self.lags = self.lag.rows(now, *writer_position(self.actor.config.offsets_file("writer")))
        if self.lags:
            self.actor.publisher.send(self.lags)
        stats.records_out += len(rows) + len(self.lags)
        stats.batch(len(rows) + len(self.lags), started)

    def close(self) -> None:
        if self.http is not None:
            self.http.close()


def main() -> None:
    actor = Actor("metrics", journaled=True, counters_on_bus=False)
    actor.run(Rollups(actor))


if __name__ == "__main__":
    main()
