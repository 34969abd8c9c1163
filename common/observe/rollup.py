"""Cumulative actor samples → interval rows of `streaming_metrics` (pure).

Each actor publishes its counters cumulatively; a row is the difference
between the samples at the ends of one interval. An actor that restarted
(its counters went backwards) is differenced from zero; one that sent
nothing for three of its intervals is reported `stale`.
"""

from __future__ import annotations

from collections import deque

from common.transport.messages import MetricSample, Position, StreamingMetric, StreamLag


def interval_counts(now: dict[str, int], before: dict[str, int] | None) -> tuple[int, str]:
    """This interval's share of cumulative counts by name: how many, and how many of each ('stall=2,closed=1')."""
    earlier = before or {}
    counts = {name: n - earlier.get(name, 0) for name, n in sorted(now.items()) if n > earlier.get(name, 0)}
    return sum(counts.values()), ",".join(f"{name}={n}" for name, n in counts.items())


def shown_status(sample: MetricSample, now_ns: int, stale_after_ns: int) -> str:
    """The actor's own status, or `stale` once it is late: no sample for `stale_after_ns`, or for three
    times the wait it announced, whichever is longer."""
    late = max(stale_after_ns, 3 * sample.next_within_ns)
    return sample.status if now_ns - sample.ts_ns <= late else "stale"


class MetricsRollup:
    def __init__(self, stale_after_ns: int, source: str | None = None, deployment: str | None = None):
        self.stale_after_ns = stale_after_ns
        self.source = source
        self.deployment = deployment
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
            status = shown_status(sample, now_ns, self.stale_after_ns)
            reconnect_count, reconnect_causes = interval_counts(sample.reconnects, before and before.reconnects)
            rejected_count, rejected_reasons = interval_counts(sample.rejected, before and before.rejected)
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
                    reconnect_count=reconnect_count,
                    reconnect_causes=reconnect_causes,
                    source=self.source,
                    rejected_count=rejected_count,
                    rejected_reasons=rejected_reasons,
                    deployment=self.deployment,
                    bars_missing=sample.bars_missing - (before.bars_missing if before else 0),
                    bars_repaired=sample.bars_repaired - (before.bars_repaired if before else 0),
                    entitlement=sample.entitlement,
                    delayed_services=sample.delayed,
                )
            )
            self._reported[actor] = sample
        return rows


class LagTracker:
    """How far the writer's commits trail each stream it follows.

    Published positions come from every actor's samples; committed ones
    from what the writer shares. `lag_seconds` is the age of the oldest
    frame published but not committed: each stream keeps when its published
    seq was seen to advance, and the first advance beyond the committed seq
    dates the oldest frame still waiting. A writer that trails by a few
    frames but keeps committing therefore shows a lag of a second or two,
    not one that grows for as long as the flow never pauses. The history is
    bounded (thinned after its first entry, which is the one that dates the
    lag), so a long outage costs O(HISTORY) per stream.
    """

    HISTORY = 3600

    def __init__(self) -> None:
        self.published: dict[str, Position] = {}
        self._advances: dict[str, deque[tuple[Position, int]]] = {}

    def observe(self, sample: MetricSample) -> None:
        for stream, seq in sample.last_seqs.items():
            position = (sample.epoch, seq)
            if self.published.get(stream) != position:
                advances = self._advances.setdefault(stream, deque())
                advances.append((position, sample.ts_ns))
                if len(advances) > self.HISTORY:
                    del advances[1]
            self.published[stream] = position

    def rows(self, now_ns: int, committed: dict[str, Position], follows: tuple[str, ...]) -> list[StreamLag]:
        rows = []
        for stream, (epoch, seq) in sorted(self.published.items()):
            if not stream.startswith(follows):
                continue
            done = committed.get(stream, (0, 0))
            if done[0] == epoch:
                committed_seq, lag = done[1], max(0, seq - done[1])
            else:
                committed_seq, lag = 0, (seq if done[0] < epoch else 0)
            advances = self._advances[stream]
            while advances and (advances[0][0] <= done or (lag == 0)):
                advances.popleft()
            lag_seconds = (now_ns - advances[0][1]) / 1e9 if lag and advances else 0.0
            rows.append(StreamLag(now_ns, stream, epoch, seq, committed_seq, lag, round(lag_seconds, 3)))
        return rows
