"""What declaring a Schwab streaming service takes (cryptofeed's per-venue channel table, per service).

A `Service` says, once, everything the code does with one of Schwab's
streaming services:

- `fields`: our name for each Schwab field ingest subscribes, from schwab-py's
  own enum (`schwab_fields`), which also numbers every field the simulator
  can serve;
- `item`: one content item, typed: a `msgspec.Struct` whose fields are
  renamed to Schwab's numbers from `fields`, so the edge decodes an item in
  one typed call;
- `check`: the item as checked at the edge (its key's format among the
  rest), or `checks.Invalid` naming what was wrong;
- `book`: a fresh merge of the service's items into bus records for one
  connection (`merge(item, frame_ms, received_ns)` → records, or
  `Incomplete`), `records` the record types it yields;
- `subscribe`: schwab-py's `StreamClient` method that subscribes it, and
  `keys`: who names its keys (STREAM_TICKERS, or the options actor's
  contract set), `instruments` which STREAM_TICKERS symbols (stocks and
  indexes, or futures), and `calendar` the sessions they trade in (the
  exchange's, CME's);
- `served`: how the simulator serves it, as Schwab delivers it: a level-one
  service ("Change" delivery: a snapshot of every subscribed field first,
  then only the fields that changed) reads each field from a simulated
  quote; a chart service ("All Sequence") writes each bar whole.

The services themselves are declared in `common/feed/services/`, one module
each; the edge decoder, the merge, the subscriptions and the simulator's
protocol derive from them.
"""

from __future__ import annotations

import operator
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from enum import Enum
from typing import Any, Protocol

import msgspec

from common.feed.market_hours import EXCHANGE

#: Who names a service's keys.
TICKERS = "tickers"
CONTRACTS = "contracts"


class Book(Protocol):
    """A service's merged state per key on one connection."""

    def merge(self, item: Any, frame_ms: int, received_ns: int) -> Iterable[msgspec.Struct]: ...

    def reset(self) -> None: ...


@dataclass(frozen=True)
class LevelOneServing:
    """How the simulator serves a level-one service: each field, by its number, read from a simulated quote
    (`readers`), and the keys that are not numbered in a snapshot (`header(quote, delayed)`)."""

    readers: Mapping[str, Callable[[Any], Any]]
    header: Callable[[Any, bool], dict[str, Any]]


@dataclass(frozen=True)
class ChartServing:
    """How the simulator serves a chart service: each bar as a whole item."""

    item: Callable[[Any], dict[str, Any]]


@dataclass(frozen=True)
class Service:
    name: str
    schwab_fields: type[Enum]
    fields: Mapping[str, Enum]
    item: type[msgspec.Struct]
    check: Callable[[Any, int], Any]
    book: Callable[[], Book]
    records: tuple[type[msgspec.Struct], ...]
    subscribe: str
    keys: str
    served: LevelOneServing | ChartServing
    #: The kinds of STREAM_TICKERS symbol it streams (`common/symbols.py`), or, keyed by contract, whose
    #: contracts it streams (a stock's and an index's options; a future's are another service).
    instruments: frozenset[str] = frozenset()
    #: The session calendar its keys trade on (`common/feed/market_hours.py`): the exchange's (MARKET_SESSIONS)
    #: or CME Globex's.
    calendar: str = EXCHANGE

    @property
    def subscribed_fields(self) -> list[Enum]:
        """The fields to subscribe, as schwab-py's enums: the symbol first, as Schwab expects."""
        return [self.schwab_fields(0), *self.fields.values()]

    @property
    def numbers(self) -> frozenset[str]:
        """Every field Schwab defines for the service but the symbol, by the number a frame carries it under."""
        return frozenset(str(field.value) for field in self.schwab_fields) - {"0"}

    def subscription(self, stream: Any, keys: list[str], command: str = "subs") -> Any:
        """schwab-py's call (a coroutine) subscribing `keys`, or adding them (`command="add"`): a level-one
        service with its fields, a chart service with every field (schwab-py takes none for it)."""
        method = getattr(stream, self.subscribe.removesuffix("_subs") + "_" + command)
        if isinstance(self.served, LevelOneServing):
            return method(keys, fields=self.subscribed_fields)
        return method(keys)


def renamed(fields: Mapping[str, Enum]) -> dict[str, str]:
    """An item struct's `rename`: our field names to Schwab's numbers."""
    return {name: str(member.value) for name, member in fields.items()}


# ---- for declaring how the simulator reads a field from a simulated quote ----------------------

read = operator.attrgetter


def constant(value: Any) -> Callable[[Any], Any]:
    return lambda quote: value


def net_change(name: str) -> Callable[[Any], float]:
    """The change of attribute `name` since the close."""
    reader = read(name)
    return lambda quote: round(reader(quote) - quote.close, 4)


def percent_change(name: str) -> Callable[[Any], float]:
    """The change of attribute `name` since the close, in percent of the close."""
    reader = read(name)

    def percent(quote: Any) -> float:
        return round(100 * round(reader(quote) - quote.close, 4) / quote.close, 8) if quote.close else 0.0
    return percent


def wire(value: Any) -> Any:
    """A value as Schwab writes it: whole doubles lose their fraction."""
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value
