"""Cumulative actor samples → interval rows of `streaming_metrics` (pure).

Each actor publishes its counters cumulatively; a row is the difference
between the samples at the ends of one interval. An actor that restarted
(its counters went backwards) is differenced from zero; one that sent
nothing for three of its intervals is reported `stale`.
"""

from __future__ import annotations

from common.messages import MetricSample, StreamingMetric, StreamLag

Position = tuple[int, int]


def reconnects(sample: MetricSample, before: MetricSample | None) -> dict[str, int | str]:
    """This interval's reconnects: how many, and how many of each cause ('stall=2,closed=1')."""
    earlier = before.reconnects if before else {}
    causes = {c: n - earlier.get(c, 0) for c, n in sorted(sample.reconnects.items()) if n > earlier.get(c, 0)}
    return {"reconnect_count": sum(causes.values()), "reconnect_causes": ",".join(f"{c}={n}" for c, n in causes.items())}


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
                    replayed_count=sample.replayed - (before.replayed if before else 0),
                    journal_bytes=sample.journal_bytes,
                    journal_error_count=sample.journal_errors - (before.journal_errors if before else 0),
                    **reconnects(sample, before),
                )
            )
            self._reported[actor] = sample
        return rows


class LagTracker:
    """How far the writer's commits trail each stream it follows.

    Published positions come from every actor's samples; committed ones
    from what the writer shares. `lag_seconds` counts from the last time a
    stream was seen fully committed (or first seen), so it stays O(1) per
    stream however long the database is away.
    """

    def __init__(self) -> None:
        self.published: dict[str, Position] = {}
        self._caught_up_ns: dict[str, int] = {}

    def observe(self, sample: MetricSample) -> None:
        for stream, seq in sample.last_seqs.items():
            self.published[stream] = (sample.epoch, seq)
            self._caught_up_ns.setdefault(stream, sample.ts_ns)

    def rows(self, now_ns: int, committed: dict[str, Position], follows: tuple[str, ...]) -> list[StreamLag]:
        rows = []
        for stream, (epoch, seq) in sorted(self.published.items()):
            if not stream.startswith(follows):
                continue
            done_epoch, done_seq = committed.get(stream, (0, 0))
            if done_epoch == epoch:
                committed_seq, lag = done_seq, max(0, seq - done_seq)
            else:
                committed_seq, lag = 0, (seq if done_epoch < epoch else 0)
            if lag == 0:
                self._caught_up_ns[stream] = now_ns
            lag_seconds = (now_ns - self._caught_up_ns[stream]) / 1e9 if lag else 0.0
            rows.append(StreamLag(now_ns, stream, epoch, seq, committed_seq, lag, round(lag_seconds, 3)))
        return rows
