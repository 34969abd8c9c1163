"""What the metrics actor shows over HTTP, computed from its samples (pure).

A `Board` keeps each actor's last two samples, so that a rate is the
difference over one sample interval; its `Snapshot`s are immutable, so HTTP
threads read one while the actor loop builds the next. Ages are taken when
asked (`now_ns`), not when a snapshot is built: a stuck metrics loop shows
as its own stale sample.

Prometheus gets counters where the sample is cumulative (rate() them) and,
for a glance, gauges of the last interval's rates and mean batch time.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric

from common.observe.rollup import shown_status
from common.transport.messages import MetricSample, StreamLag


@dataclass(frozen=True)
class ActorView:
    """An actor's latest sample and its rates over the interval before it (None: not known yet)."""

    sample: MetricSample
    records_in_per_s: float | None = None
    records_out_per_s: float | None = None
    batch_latency_s: float | None = None


@dataclass(frozen=True)
class Snapshot:
    actors: tuple[ActorView, ...] = ()
    lags: tuple[StreamLag, ...] = ()


def restarted(sample: MetricSample, before: MetricSample) -> bool:
    """A new publisher epoch, or counters that went backwards."""
    return sample.epoch != before.epoch or any(
        getattr(sample, field) < getattr(before, field) for field in ("records_in", "records_out", "batches")
    )


def view(sample: MetricSample, before: MetricSample | None) -> ActorView:
    if before is None or sample.ts_ns <= before.ts_ns or restarted(sample, before):
        return ActorView(sample)
    seconds = (sample.ts_ns - before.ts_ns) / 1e9
    batches = sample.batches - before.batches
    return ActorView(
        sample,
        records_in_per_s=(sample.records_in - before.records_in) / seconds,
        records_out_per_s=(sample.records_out - before.records_out) / seconds,
        batch_latency_s=(sample.processing_ns - before.processing_ns) / batches / 1e9 if batches else None,
    )


class Board:
    """Each actor's last two samples; an older or repeated sample is ignored."""

    def __init__(self) -> None:
        self._held: dict[str, tuple[MetricSample | None, MetricSample]] = {}

    def observe(self, sample: MetricSample) -> None:
        held = self._held.get(sample.actor)
        if held is None:
            self._held[sample.actor] = (None, sample)
        elif sample.ts_ns > held[1].ts_ns:
            self._held[sample.actor] = (held[1], sample)

    def snapshot(self, lags: Iterable[StreamLag]) -> Snapshot:
        return Snapshot(
            tuple(view(latest, before) for _, (before, latest) in sorted(self._held.items())), tuple(lags)
        )


def age_s(sample: MetricSample, now_ns: int) -> float:
    return max(0.0, (now_ns - sample.ts_ns) / 1e9)


def _rounded(value: float | None, digits: int) -> float | None:
    return None if value is None else round(value, digits)


def health(snapshot: Snapshot, expected: Iterable[str], now_ns: int, stale_after_ns: int,
           source: str | None = None) -> dict:
    """/healthz: `ok` when every expected actor sampled lately and is running, else `degraded`.

    `source` (schwab or simulator) says whose market data this is.
    """
    views = {v.sample.actor: v for v in snapshot.actors}
    actors: dict[str, dict] = {}
    for name in sorted({*expected, *views}):
        seen = views.get(name)
        if seen is None:
            actors[name] = {"status": "missing", "last_sample_age_s": None}
            continue
        sample = seen.sample
        actors[name] = {
            "status": shown_status(sample, now_ns, stale_after_ns),
            "last_sample_age_s": round(age_s(sample, now_ns), 3),
            "records_in_per_s": _rounded(seen.records_in_per_s, 3),
            "records_out_per_s": _rounded(seen.records_out_per_s, 3),
            "batch_latency_s": _rounded(seen.batch_latency_s, 6),
            "records_in": sample.records_in,
            "records_out": sample.records_out,
            "errors": sample.errors,
            "gaps": sample.gaps,
            "reconnects": sum(sample.reconnects.values()),
            "rejected": sum(sample.rejected.values()),
            "journal_bytes": sample.journal_bytes,
            "rss_bytes": sample.rss_bytes,
        }
    ok = all(entry["status"] == "running" for entry in actors.values())
    storage = next((seen.sample.storage for seen in snapshot.actors if seen.sample.storage), None)
    ingest = views.get("ingest")
    delayed = ingest.sample.delayed.split(",") if ingest is not None and ingest.sample.delayed else []
    return {
        "status": "ok" if ok and not delayed and (storage is None or storage.level == "ok") else "degraded",
        "source": source,
        "realtime": {"entitlement": None if ingest is None else ingest.sample.entitlement, "delayed": delayed},
        "actors": actors,
        "storage": None if storage is None else {
            "level": storage.level, "database_bytes": storage.database_bytes, "budget_bytes": storage.budget_bytes,
            "bytes_per_day": storage.bytes_per_day, "days_left": None if storage.days_left < 0 else storage.days_left},
        "streams": {lag.stream: {"lag_records": lag.lag_records, "lag_seconds": lag.lag_seconds}
                    for lag in snapshot.lags},
    }


#: Per-actor series straight from one sample field: (name, help, value).
_COUNTERS: tuple[tuple[str, str, Callable[[MetricSample], float]], ...] = (
    ("streaming_batches", "Units of work (batches) done since the actor started.", lambda s: s.batches),
    ("streaming_processing_seconds", "Time spent working since the actor started; divide by batches for latency.",
     lambda s: s.processing_ns / 1e9),
    ("streaming_errors", "Errors counted since the actor started.", lambda s: s.errors),
    ("streaming_gaps", "Frames that neither the bus nor the journal had.", lambda s: s.gaps),
    ("streaming_replayed", "Frames taken from a journal instead of the bus.", lambda s: s.replayed),
    ("streaming_journal_errors", "Journal failures: appends that failed (a full disk), and segments "
     "deleted unconsumed at JOURNAL_MAX_BYTES.", lambda s: s.journal_errors),
)
_GAUGES: tuple[tuple[str, str, Callable[[ActorView], float | None]], ...] = (
    ("streaming_last_batch_size", "Records in the actor's last batch.", lambda v: v.sample.last_batch_size),
    ("streaming_batch_latency_seconds", "Mean time per batch over the last sample interval.",
     lambda v: v.batch_latency_s),
    ("streaming_journal_bytes", "The actor's journal on disk.", lambda v: v.sample.journal_bytes),
    ("streaming_resident_memory_bytes", "The actor process's resident memory (RSS).", lambda v: v.sample.rss_bytes),
)


def families(snapshot: Snapshot, now_ns: int, stale_after_ns: int, source: str | None = None) -> list[Metric]:
    """Every Prometheus family, labelled by actor (and direction, cause, status or stream)."""
    sources = GaugeMetricFamily("streaming_source_info", "1 for where the market data comes from: schwab, the "
                                "simulator (SIMULATED data), or replay (a recording).", labels=["source"])
    if source:
        sources.add_metric([source], 1)
    records = CounterMetricFamily("streaming_records", "Records taken in / sent out since the actor started.",
                                  labels=["actor", "direction"])
    per_second = GaugeMetricFamily("streaming_records_per_second", "Records per second over the last sample interval.",
                                   labels=["actor", "direction"])
    reconnects = CounterMetricFamily("streaming_reconnects", "Reconnects since the actor started, by cause.",
                                     labels=["actor", "cause"])
    rejected = CounterMetricFamily("streaming_rejected", "Items refused where data enters since the actor started, "
                                   "by reason.", labels=["actor", "reason"])
    status = GaugeMetricFamily("streaming_actor_status", "1 for the actor's current status (stale: no recent sample).",
                               labels=["actor", "status"])
    up = GaugeMetricFamily("streaming_actor_up", "1 when the actor sampled lately and is running.", labels=["actor"])
    age = GaugeMetricFamily("streaming_last_sample_age_seconds", "Since the actor's last sample.", labels=["actor"])
    counters = [CounterMetricFamily(name, text, labels=["actor"]) for name, text, _ in _COUNTERS]
    gauges = [GaugeMetricFamily(name, text, labels=["actor"]) for name, text, _ in _GAUGES]
    for seen in snapshot.actors:
        sample, actor = seen.sample, seen.sample.actor
        records.add_metric([actor, "in"], sample.records_in)
        records.add_metric([actor, "out"], sample.records_out)
        for direction, rate in (("in", seen.records_in_per_s), ("out", seen.records_out_per_s)):
            if rate is not None:
                per_second.add_metric([actor, direction], rate)
        for cause, count in sorted(sample.reconnects.items()):
            reconnects.add_metric([actor, cause], count)
        for reason, count in sorted(sample.rejected.items()):
            rejected.add_metric([actor, reason], count)
        shown = shown_status(sample, now_ns, stale_after_ns)
        status.add_metric([actor, shown], 1)
        up.add_metric([actor], 1 if shown == "running" else 0)
        age.add_metric([actor], age_s(sample, now_ns))
        for family, (_, _, value) in zip(counters, _COUNTERS, strict=True):
            family.add_metric([actor], value(sample))
        for family, (_, _, value) in zip(gauges, _GAUGES, strict=True):
            if (measured := value(seen)) is not None:
                family.add_metric([actor], measured)
    lag_records = GaugeMetricFamily("streaming_stream_lag_records", "Frames published but not yet committed.",
                                    labels=["stream"])
    lag_seconds = GaugeMetricFamily("streaming_stream_lag_seconds", "How long the stream has been behind.",
                                    labels=["stream"])
    for lag in snapshot.lags:
        lag_records.add_metric([lag.stream], lag.lag_records)
        lag_seconds.add_metric([lag.stream], lag.lag_seconds)
    delayed = GaugeMetricFamily("streaming_delayed", "1 for each level-one service whose latest item Schwab marked "
                                "delayed (the account is not entitled to real-time data).", labels=["service"])
    for seen in snapshot.actors:
        for service in filter(None, seen.sample.delayed.split(",")):
            delayed.add_metric([service], 1)
    return [sources, records, per_second, reconnects, rejected, status, up, age, *counters, *gauges, lag_records,
            lag_seconds, delayed, *storage_families(snapshot)]


def storage_families(snapshot: Snapshot) -> list[Metric]:
    """The storage budget as the writer last measured it (common/store/budget.py)."""
    size = GaugeMetricFamily("streaming_database_bytes", "The database's size, as Supabase counts it "
                             "(pg_database_size).")
    budget = GaugeMetricFamily("streaming_storage_budget_bytes", "STORAGE_BUDGET_MB in bytes (0: no budget).")
    days = GaugeMetricFamily("streaming_storage_budget_days_left", "Days the budget lasts at the measured rate, "
                             "past days archived and dropped.")
    level = GaugeMetricFamily("streaming_storage_budget_level", "1 for the budget's level: ok, warn or crit.",
                              labels=["level"])
    storage = next((seen.sample.storage for seen in snapshot.actors if seen.sample.storage), None)
    if storage is not None:
        size.add_metric([], storage.database_bytes)
        budget.add_metric([], storage.budget_bytes)
        if storage.days_left >= 0:
            days.add_metric([], storage.days_left)
        level.add_metric([storage.level], 1)
    return [size, budget, days, level]


class SnapshotCollector:
    """A Prometheus collector over whichever snapshot `current()` returns at scrape time."""

    def __init__(self, current: Callable[[], Snapshot], stale_after_ns: int, clock: Callable[[], int],
                 source: str | None = None):
        self.current, self.stale_after_ns, self.clock, self.source = current, stale_after_ns, clock, source

    def collect(self) -> Iterator[Metric]:
        yield from families(self.current(), self.clock(), self.stale_after_ns, self.source)
