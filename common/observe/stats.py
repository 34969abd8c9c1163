"""Per-actor counters, published as cumulative `MetricSample`s.

Every actor owns one `ActorStats`; its loop counts into it and calls
`maybe_publish` often. Samples are cumulative, so the metrics actor loses no
count when a sample is dropped: it differences the next one.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import msgspec
import psutil

from common.transport.bus import Publisher
from common.transport.messages import MetricSample, StorageBudget

#: While nothing changes, a sample goes out every this many STATS_INTERVALs.
IDLE_SAMPLES = 5


class ActorStats:
    def __init__(self, actor: str, interval: float, clock: Callable[[], float] = time.monotonic):
        self.actor = actor
        self.interval = interval
        self._clock = clock
        self.status = "starting"
        self.records_in = 0
        self.records_out = 0
        self.batches = 0
        self.last_batch_size = 0
        self.processing_ns = 0
        self.errors = 0
        self.gaps = 0
        self.replayed = 0
        #: Minute bars the stream missed while ingest was away, and those filled from price history.
        self.bars_missing = 0
        self.bars_repaired = 0
        self.reconnects: dict[str, int] = {}
        #: Items refused where data enters, by reason (common/feed/edge.py, common/feed/levelone.py).
        self.rejections: dict[str, int] = {}
        #: The writer's: the storage budget as last measured.
        self.storage: StorageBudget | None = None
        #: Ingest's: the account's status in Schwab's LOGIN reply, and per service whether its latest item was
        #: delayed (Schwab's own `delayed` flag).
        self.entitlement: str | None = None
        self.delayed: dict[str, bool] = {}
        self._next_publish = 0.0
        self._published_at = 0.0
        self._published: tuple = ()
        self._promised = 0.0
        self._process = psutil.Process()

    def batch(self, size: int, started_ns: int) -> None:
        """Count one unit of work of `size` records that began at `started_ns`."""
        self.batches += 1
        self.last_batch_size = size
        self.processing_ns += time.perf_counter_ns() - started_ns

    def reconnected(self, cause: str) -> None:
        self.reconnects[cause] = self.reconnects.get(cause, 0) + 1

    def rejected(self, reason: str) -> None:
        """One item refused: counted by its reason, and as an error."""
        self.rejections[reason] = self.rejections.get(reason, 0) + 1
        self.errors += 1

    def sample(self) -> MetricSample:
        return MetricSample(
            actor=self.actor,
            ts_ns=time.time_ns(),
            status=self.status,
            records_in=self.records_in,
            records_out=self.records_out,
            batches=self.batches,
            last_batch_size=self.last_batch_size,
            processing_ns=self.processing_ns,
            errors=self.errors,
            gaps=self.gaps,
            replayed=self.replayed,
            reconnects=dict(self.reconnects),
            rejected=dict(self.rejections),
            bars_missing=self.bars_missing,
            bars_repaired=self.bars_repaired,
            storage=self.storage,
            rss_bytes=self._process.memory_info().rss,  # one read of /proc/self/statm
            entitlement=self.entitlement,
            delayed=self.delayed_services,
        )

    @property
    def delayed_services(self) -> str:
        """The services whose latest item Schwab marked delayed, comma-separated ('' when none)."""
        return ",".join(sorted(service for service, delayed in self.delayed.items() if delayed))

    @property
    def due(self) -> float:
        """When a loop with nothing else to do must call `maybe_publish` again: an interval after the last look
        while the actor works; while it idles, when its last sample promised the next (work wakes the loop
        sooner anyway, and a change is then published within an interval)."""
        if self._promised <= self.interval:
            return self._next_publish
        return max(self._next_publish, self._published_at + self._promised)

    def _activity(self, publisher: Publisher) -> tuple:
        return (self.status, self.records_in, self.records_out, self.errors, self.gaps, self.replayed,
                self.bars_missing, self.bars_repaired, self.storage, self.entitlement, self.delayed_services,
                publisher.journal_errors,
                dict(publisher.sequencer.last_seqs))

    def maybe_publish(self, publisher: Publisher, force: bool = False) -> None:
        """Send a sample every interval while anything changes, every IDLE_SAMPLES intervals while nothing does
        (each sample says which: `next_within_ns`), so an idle actor costs metrics almost nothing."""
        now = self._clock()
        if not force and now < self._next_publish:
            return
        self._next_publish = now + self.interval
        activity = self._activity(publisher)
        quiet = activity == self._published
        if not force and quiet and now < self._published_at + self._promised:
            return
        wait = (IDLE_SAMPLES if quiet else 1) * self.interval  # the first quiet sample announces the longer wait
        sample = msgspec.structs.replace(
            self.sample(), epoch=publisher.epoch, last_seqs=activity[-1],
            journal_bytes=publisher.journal_bytes, journal_errors=publisher.journal_errors,
            next_within_ns=int(wait * 1e9),
        )
        publisher.send([sample])
        # Taken again after the send, which moved the metric stream's own seq: a sample is not activity.
        self._published, self._published_at, self._promised = self._activity(publisher), now, wait
