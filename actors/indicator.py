"""indicator: SMA9 and session VWAP for every trade ingest publishes.

It takes ingest's trade and bar frames in the order ingest received them and
publishes, per input frame, one `indicator` frame. It starts by
replaying ingest's journal, so that after a restart its state, and so its
first values, equal an uninterrupted run's; frames lost on the bus are
filled from the journal too. On SIGTERM it drains until ingest has said
goodbye (or gone quiet), publishes, and exits 0.
"""

from __future__ import annotations

import time

import msgspec

from common.actor import Actor, Work
from common.analytics.indicators import IndicatorEngine
from common.transport.delivery import Follower, newest_sent
from common.transport.messages import Envelope, EquityTrade, IndexLevel, IndicatorValue, MinuteBar, Record
from common.transport.topics import stream, tag


def sent_key(record: Record) -> tuple[str, tuple] | None:
    """An indicator value is identified per symbol by (trade time, day volume)."""
    if isinstance(record, IndicatorValue):
        return record.symbol, (record.trade_time_ms, record.day_volume)
    return None


class Indicators(Work):
    """ingest's trades, index levels and bars in, one `indicator` frame of values never sent before out."""

    subscriptions = (("ingest", EquityTrade), ("ingest", IndexLevel), ("ingest", MinuteBar))
    consumers = ("writer",)

    def __init__(self, actor: Actor):
        self.actor = actor
        self.engine = IndicatorEngine()
        self.follows = tuple(stream(actor.config.deployment, publisher, tag(record))
                             for publisher, record in self.subscriptions)
        #: Per symbol, the newest value its own journal says was sent: a restart rebuilds state, not output.
        self.published = newest_sent(actor.config.journal_dir(actor.name), sent_key)

    def start(self, follower: Follower | None) -> bool:
        """Rebuild SMA9 and VWAP from what ingest journaled; values already sent are not sent again."""
        super().start(follower)
        self.actor.log.info("computing indicators", extra={"replayed": follower.replayed})
        return True

    def take(self, frame: Envelope) -> None:
        stats, started = self.actor.stats, time.perf_counter_ns()
        result = self.engine.on_records(frame.records)
        for record, reason in result.rejected:
            stats.errors += 1
            self.actor.log.warning(
                "record rejected",
                extra={"reason": reason, "stream": frame.stream, "record": msgspec.structs.asdict(record)},
            )
        fresh = [value for symbol, values in result.values.items() for value in values
                 if (value.trade_time_ms, value.day_volume) > self.published.get(symbol, ())]
        if fresh:
            self.actor.publisher.send(fresh)
            stats.records_out += len(fresh)
        stats.records_in += len(frame.records)
        stats.batch(len(frame.records), started)


def main() -> None:
    actor = Actor("indicator", journaled=True)
    actor.run(Indicators(actor))


if __name__ == "__main__":
    main()
