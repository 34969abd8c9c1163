"""Which record goes to which stream, journal and table: declared here once, derived everywhere else.

A stream is one publisher's frames of one kind of record, named
`{deployment}/{publisher}/{kind}` (its ZeroMQ topic too); `kind` is the
record's msgspec tag. The deployment name keeps the streams, offsets and
journals of several deployments apart when they write into one database
(one per Schwab login: Schwab streams at most 500 keys per login).

- `journaled`: the publisher journals every frame before sending it
  (`common/tickerplant.py`), so a consumer that missed frames replays them.
  Journaled is what cannot be derived again cheaply: Schwab's trades, bars
  and option quotes, and what the indicator and options actors made of them.
- `table`: the writer stores the stream's records there (`common/db.py`
  says how); the writer subscribes to exactly these streams and follows the
  journaled ones exactly once.
"""

from __future__ import annotations

from dataclasses import dataclass

import msgspec

from common.messages import (
    EquityQuote,
    EquityTrade,
    IndicatorValue,
    MetricSample,
    MinuteBar,
    OptionQuote,
    OptionRow,
    OptionSubscription,
    StreamingMetric,
    StreamLag,
)

#: Every actor publishes its counters: the metric stream has no one publisher.
EVERY_ACTOR = "*"


@dataclass(frozen=True)
class Kind:
    record: type[msgspec.Struct]
    publisher: str
    journaled: bool = False
    table: str | None = None

    @property
    def name(self) -> str:
        return tag(self.record)


def tag(record: type[msgspec.Struct]) -> str:
    """A record's kind on the bus: its msgspec tag."""
    return record.__struct_config__.tag


KINDS: tuple[Kind, ...] = (
    Kind(EquityTrade, "ingest", journaled=True, table="equity_data"),
    Kind(EquityQuote, "ingest"),
    Kind(MinuteBar, "ingest", journaled=True),
    Kind(OptionQuote, "ingest", journaled=True),
    Kind(IndicatorValue, "indicator", journaled=True, table="indicators"),
    Kind(OptionRow, "options", journaled=True, table="option_prices"),
    Kind(OptionSubscription, "options"),
    Kind(StreamingMetric, "metrics", table="streaming_metrics"),
    Kind(StreamLag, "metrics", table="stream_metrics"),
    Kind(MetricSample, EVERY_ACTOR),
)
BY_NAME = {kind.name: kind for kind in KINDS}
BY_RECORD = {kind.record: kind for kind in KINDS}
#: What the writer stores: record type → table.
TABLE_OF = {kind.record: kind.table for kind in KINDS if kind.table}


def stream(deployment: str, publisher: str, kind: str) -> str:
    return f"{deployment}/{publisher}/{kind}"


def publisher_of(name: str) -> str:
    """The publisher of stream `name` (`{deployment}/{publisher}/{kind}`)."""
    return name.split("/", 2)[1]


def stored(deployment: str) -> tuple[str, ...]:
    """The streams the writer subscribes to and stores."""
    return tuple(stream(deployment, kind.publisher, kind.name) for kind in KINDS if kind.table)


def followed(deployment: str) -> tuple[str, ...]:
    """The stored streams whose publishers journal them: the writer takes each of their frames exactly once."""
    return tuple(stream(deployment, kind.publisher, kind.name) for kind in KINDS if kind.table and kind.journaled)


def journaled(kind: str) -> bool:
    return BY_NAME[kind].journaled
