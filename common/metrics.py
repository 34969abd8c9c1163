"""Cumulative actor samples → interval rows of `streaming_metrics` (pure).

Each actor publishes its counters cumulatively; a row is the difference
between the samples at the ends of one interval. An actor that restarted
(its counters went backwards) is differenced from zero; one that sent
nothing for three of its intervals is reported `stale`.
"""

from __future__ import annotations

from common.messages import MetricSample, StreamingMetric


class MetricsRollup:
    def __init__(self, stale_after_ns: int):
        self.stale_after_ns = stale_after_ns
        self.latest: dict[str, MetricSample] = {}
        self._reported: dict[str, MetricSample] = {}

    def observe(self, sample: MetricSample) -> None:
        self.latest[sample.actor] = sample

    def rows(self, now_ns: int) -> list[StreamingMetric]:
        """One row per actor heard from, covering the interval since the last call."""
        rows = []
        for actor, sample in sorted(self.latest.items()):
            before = self._reported.get(actor)
            if before is None or sample.records_in < before.records_in or sample.errors < before.errors:
                before = None
            status = sample.status if now_ns - sample.ts_ns <= self.stale_after_ns else "stale"
            rows.append(
                StreamingMetric(
                    ts_ns=now_ns,
                    actor=actor,
                    ticker=sample.ticker,
                    records_processed=sample.records_in - (before.records_in if before else 0),
                    batch_size=sample.last_batch_size,
                    processing_time_ms=(sample.processing_ns - (before.processing_ns if before else 0)) // 1_000_000,
                    error_count=sample.errors - (before.errors if before else 0),
                    gap_count=sample.gaps - (before.gaps if before else 0),
                    service_status=status,
                )
            )
            self._reported[actor] = sample
        return rows
