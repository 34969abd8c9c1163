"""Which record goes to which stream, journal and table: declared here once, derived everywhere else.

A stream is one publisher's frames of one kind of record, named
`{deployment}/{publisher}/{kind}` (its ZeroMQ topic too); `kind` is the
record's msgspec tag (`common/transport/topics.py` names them). A publisher
is handed records and a subscriber names record types: a kind is spelled
here and in the tags (`common/transport/messages.py`), nowhere else.

Transport builds on none of this: what a tickerplant journals is handed to
it (`journaled_kinds`), and the registry, which needs the analytics to make
an option row, sits above both.

- `journaled`: the publisher journals every frame before sending it
  (`common/transport/tickerplant.py`), so a consumer that missed frames replays them.
  Journaled is what cannot be derived again cheaply: Schwab's trades, bars
  and option quotes, the indicator values (each depends on the symbol's
  whole session so far), and metrics' rows (a roll-up of counters that are
  gone once rolled up). Every stored stream is journaled, so a writer
  restart loses nothing in flight, and a gap the writer reports is a real
  loss.
- `table`: the writer stores the stream's records there (`common/store/db.py`
  says how); the writer subscribes to exactly these streams and follows the
  journaled ones exactly once.
- `opt_in`: the setting that turns storing on, for a stream too large to
  store by default (level-one quotes: `STORE_QUOTES`). Off, the stream is
  neither journaled nor stored; on, it is both, like any stored stream.
- `row`: the pure function that makes a table row from one record, where the
  row is not the record itself. An option row is its quote completed (greeks
  Schwab left out, by Black-Scholes), so the writer stores ingest's journaled
  option quotes through `option_row`: nothing derivable is journaled twice,
  and no actor forwards every quote just to reshape it.
- `sampled`: the setting whose interval turns the stream into snapshots
  before it is stored: per symbol, its last record in each interval,
  stamped with the interval (`common/store/snapshots.py` states the rule);
  0 stores every record. Option quotes: `OPTION_STORE_INTERVAL`.
"""

from __future__ import annotations

import typing
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import msgspec

from common.analytics.option_chain import option_row
from common.transport.messages import (
    EquityQuote,
    EquityTrade,
    IndexLevel,
    IndicatorValue,
    MetricSample,
    MinuteBar,
    OptionQuote,
    OptionSubscription,
    StreamingMetric,
    StreamLag,
)
from common.transport.topics import stream, tag

#: Every actor publishes its counters: the metric stream has no one publisher.
EVERY_ACTOR = "*"


@dataclass(frozen=True)
class Kind:
    record: type[msgspec.Struct]
    publisher: str
    journaled: bool = False
    table: str | None = None
    row: Callable[[Any], msgspec.Struct] | None = None
    opt_in: str | None = None
    sampled: str | None = None

    def active(self, opted_in: frozenset[str]) -> bool:
        """Journaled and stored as declared: always, or when its `opt_in` setting is on (`opted_in` names those)."""
        return self.opt_in is None or self.opt_in in opted_in

    @property
    def name(self) -> str:
        return tag(self.record)

    @property
    def stored(self) -> type[msgspec.Struct]:
        """The struct a table row is: `row`'s declared return type, else the record's own."""
        return typing.get_type_hints(self.row)["return"] if self.row else self.record

    def stream(self, deployment: str) -> str:
        """Its stream in `deployment`: the stream of its one publisher (not EVERY_ACTOR's)."""
        return stream(deployment, self.publisher, self.name)


KINDS: tuple[Kind, ...] = (
    Kind(EquityTrade, "ingest", journaled=True, table="equity_data"),
    Kind(IndexLevel, "ingest", journaled=True, table="index_levels"),
    Kind(EquityQuote, "ingest", journaled=True, table="equity_quotes", opt_in="STORE_QUOTES"),
    Kind(MinuteBar, "ingest", journaled=True, table="equity_bars"),
    Kind(OptionQuote, "ingest", journaled=True, table="option_prices", row=option_row, sampled="OPTION_STORE_INTERVAL"),
    Kind(IndicatorValue, "indicator", journaled=True, table="indicators"),
    Kind(OptionSubscription, "options"),
    Kind(StreamingMetric, "metrics", journaled=True, table="streaming_metrics"),
    Kind(StreamLag, "metrics", journaled=True, table="stream_metrics"),
    Kind(MetricSample, EVERY_ACTOR),
)
BY_RECORD = {kind.record: kind for kind in KINDS}
#: What the writer stores: table → the struct its rows are.
ROW_OF = {kind.table: kind.stored for kind in KINDS if kind.table}


def stored(opted_in: frozenset[str]) -> tuple[Kind, ...]:
    """The kinds the writer subscribes to and stores."""
    return tuple(kind for kind in KINDS if kind.table and kind.active(opted_in))


def stored_streams(deployment: str, opted_in: frozenset[str]) -> tuple[str, ...]:
    return tuple(kind.stream(deployment) for kind in stored(opted_in))


def followed(deployment: str, opted_in: frozenset[str]) -> tuple[str, ...]:
    """The stored streams whose publishers journal them: the writer takes each of their frames exactly once."""
    return tuple(kind.stream(deployment) for kind in stored(opted_in) if kind.journaled)


def journaled_kinds(opted_in: frozenset[str]) -> frozenset[str]:
    """The kinds a tickerplant journals (`common/transport/tickerplant.py` is handed them): worked out once, when it
    is built, not per frame sent."""
    return frozenset(kind.name for kind in KINDS if kind.journaled and kind.active(opted_in))
