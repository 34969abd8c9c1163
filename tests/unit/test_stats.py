"""An actor's counters go out every interval while it works, and every IDLE_SAMPLES intervals while it idles."""

from __future__ import annotations

from dataclasses import dataclass, field

from common.observe.rollup import shown_status
from common.observe.stats import IDLE_SAMPLES, ActorStats
from common.transport.messages import MetricSample


@dataclass
class Sequencer:
    last_seqs: dict[str, int] = field(default_factory=dict)


@dataclass
class KeptSamples:
    """What a publisher needs to be for `maybe_publish`: it keeps what it is sent."""

    epoch: int = 1
    journal_bytes: int = 0
    journal_errors: int = 0
    sequencer: Sequencer = field(default_factory=Sequencer)
    sent: list[MetricSample] = field(default_factory=list)

    def send(self, records: list[MetricSample]) -> int:
        """As a real publisher does, a sample moves the metric stream's seq: that is not the actor's activity."""
        assert all(isinstance(record, MetricSample) for record in records)
        self.sent.extend(records)
        self.sequencer.last_seqs["host/indicator/metric"] = len(self.sent)
        return len(self.sent)


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def run(stats: ActorStats, publisher: KeptSamples, clock: Clock, seconds: float, work: bool) -> None:
    """Call maybe_publish every 50 ms (as Actor.tick does) for `seconds`, counting a record each call if `work`."""
    for _ in range(int(seconds / 0.05)):
        clock.now += 0.05
        if work:
            stats.records_in += 1
        stats.maybe_publish(publisher)


def test_samples_slow_down_while_nothing_changes_and_say_so():
    clock, publisher = Clock(), KeptSamples()
    stats = ActorStats("indicator", 1.0, clock)
    run(stats, publisher, clock, 10, work=True)
    assert 9 <= len(publisher.sent) <= 11, "one a second while working"
    assert publisher.sent[-1].next_within_ns == 1_000_000_000

    working = len(publisher.sent)
    run(stats, publisher, clock, 30, work=False)
    quiet = publisher.sent[working:]
    assert quiet[0].records_in == 200, "the work done since the last sample still goes out at once"
    assert quiet[1].next_within_ns == IDLE_SAMPLES * 1_000_000_000, "the first quiet sample announces the longer wait"
    assert len(quiet) <= 30 / IDLE_SAMPLES + 2

    before = len(publisher.sent)
    stats.status = "market_closed"
    run(stats, publisher, clock, 1.05, work=False)
    assert publisher.sent[before:] and publisher.sent[-1].status == "market_closed", "a change goes out within an interval"


def test_an_idle_actor_is_not_stale_within_what_it_announced_and_is_after():
    sample = MetricSample("writer", 0, "running", 0, 0, 0, 0, 0, 0, 0, next_within_ns=5_000_000_000)
    assert shown_status(sample, 14_000_000_000, stale_after_ns=3_000_000_000) == "running"
    assert shown_status(sample, 16_000_000_000, stale_after_ns=3_000_000_000) == "stale"
    older = MetricSample("writer", 0, "running", 0, 0, 0, 0, 0, 0, 0)  # a sender from before the field
    assert shown_status(older, 4_000_000_000, stale_after_ns=3_000_000_000) == "stale"


def test_an_idle_actor_need_not_wake_before_the_sample_it_promised():
    clock, publisher = Clock(), KeptSamples()
    stats = ActorStats("indicator", 1.0, clock)
    run(stats, publisher, clock, 3, work=True)
    assert stats.due <= clock.now + 1.0, "while it works, it looks every interval"
    run(stats, publisher, clock, 1.5, work=False)
    assert publisher.sent[-1].next_within_ns == IDLE_SAMPLES * 1_000_000_000
    promised = stats.due
    assert promised > clock.now + 2, "quiet: its loop may sleep until the promised sample"
    sent = len(publisher.sent)
    clock.now = promised
    stats.maybe_publish(publisher)
    assert len(publisher.sent) == sent + 1 and stats.due > clock.now + 2, "the promised sample went out; it promises again"
