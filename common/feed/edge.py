"""Where market data enters: Schwab's `data` entries → typed, checked updates (pure).

A streamer message's `data` entries are decoded with msgspec straight from
the received text, each content item into the typed update of its service,
its fields named once here (`FIELDS`, from schwab-py's own enums). schwab-py
keeps the rest of the message: responses, notifications, heartbeats.

Every item is checked on its own, and a bad one becomes a `Rejection` (its
service, key, reason and an excerpt) without costing the other items of its
message; so does an item whose check fails in a way nobody foresaw
(`item_failed`): nothing an item holds escapes to drop the connection.

Each entry's own timestamp is checked first against the receive clock, since
every item time is checked against it: a frame stamped in year 9892 would
otherwise vouch for items of year 9892 (an indicator that takes the session as
closed, a bar gap that never ends). An entry stamped more than `FRAME_AHEAD`
after the clock is refused whole (`frame_in_future`): Schwab stamps a frame as
it sends it, and five minutes is more than any clock error NTP leaves, so what
lies beyond is damage, or this host's clock is behind (the log line says so).
A live entry (a Schwab connection) stamped more than `FRAME_BEHIND` before the
clock is refused too (`frame_too_old`): no socket holds a frame for a day. A
replay is not live: a recording is as old as it is, and only a frame after
the clock is refused in it.

What is checked of the items:

- the key is a plausible symbol: 1-15 of `A-Z 0-9 . / $ -` starting with a
  letter, digit, `$` or `/` (`BRK.B`, `/ES`, `$SPX`) for equities and charts;
  an OSI option symbol (`SPY   251021C00580000`) for options;
- every field has Schwab's type: prices are numbers, sizes, volumes and
  times integers (a boolean is not an integer here, nor `1.5`), a contract
  type C or P; text where a number belongs rejects the item;
- prices are finite, above zero and below `PRICE_CEILING`; a bid, ask, last
  or mark of 0 means "no quote" (None), not a price; Schwab's -999 for a
  greek or a volatility it could not compute means None too;
- sizes, volumes, open interest and a bar's sequence are from 0 to
  `VOLUME_CEILING` (`size_invalid` below, `size_implausible` above): more
  than any symbol has ever traded in a day, and within the 64-bit integers
  the bus and the tables carry (msgspec reads a JSON integer of any size);
- times are within `TIME_BEHIND` before to `TIME_AHEAD` after the frame's own
  timestamp;
- a bar's high is not below its low, nor its open or close outside them;
- an option's key is an OSI symbol with a strike above 0, its expiry a date.

What the merge (`common/feed/levelone.py`) completes from elsewhere is its own
business: this module only says what an item carries.
"""

from __future__ import annotations

import json
import math
import re
from collections import OrderedDict
from dataclasses import dataclass, field
from datetime import date, datetime, timezone
from typing import Any

import msgspec
from msgspec import UNSET, UnsetType
from schwab.streaming import StreamClient

from common.feed import option_symbols

LEVELONE_EQUITIES = "LEVELONE_EQUITIES"
LEVELONE_OPTIONS = "LEVELONE_OPTIONS"
CHART_EQUITY = "CHART_EQUITY"
#: A price above this is damage, not a market (Berkshire's A shares trade under a million).
PRICE_CEILING = 10_000_000.0
#: A time this far before its frame is stale state (a snapshot's last trade before a long weekend is younger).
TIME_BEHIND = 14 * 86_400_000
#: Or this far after it: clocks differ by milliseconds, not minutes.
TIME_AHEAD = 300_000
#: A frame stamped this far after the receive clock is damage (or this host's clock is behind): see above.
FRAME_AHEAD = 300_000
#: A live frame stamped this far before the receive clock is damage: no socket holds a frame for a day.
FRAME_BEHIND = 86_400_000
#: Shares (or contracts) no count can reach: the busiest symbols trade billions in a day, the whole US market
#: some tens of billions; far below the 2**63 a bus frame or a bigint column holds.
VOLUME_CEILING = 1_000_000_000_000
#: Schwab's placeholder for a greek or volatility it could not compute.
NOT_COMPUTED = -999.0
EXCERPT = 200

_EQ = StreamClient.LevelOneEquityFields
_OPT = StreamClient.LevelOneOptionFields
_CHART = StreamClient.ChartEquityFields

#: Our name for each Schwab field ingest asks for, per service: the one table of Schwab's numbers.
FIELDS = {
    LEVELONE_EQUITIES: {
        "bid": _EQ.BID_PRICE, "ask": _EQ.ASK_PRICE, "last": _EQ.LAST_PRICE, "bid_size": _EQ.BID_SIZE,
        "ask_size": _EQ.ASK_SIZE, "total_volume": _EQ.TOTAL_VOLUME, "last_size": _EQ.LAST_SIZE,
        "quote_time": _EQ.QUOTE_TIME_MILLIS, "trade_time": _EQ.TRADE_TIME_MILLIS,
    },
    LEVELONE_OPTIONS: {
        "bid": _OPT.BID_PRICE, "ask": _OPT.ASK_PRICE, "last": _OPT.LAST_PRICE, "total_volume": _OPT.TOTAL_VOLUME,
        "open_interest": _OPT.OPEN_INTEREST, "volatility": _OPT.VOLATILITY, "expiration_year": _OPT.EXPIRATION_YEAR,
        "strike": _OPT.STRIKE_TYPE, "contract_type": _OPT.CONTRACT_TYPE, "underlying": _OPT.UNDERLYING,
        "expiration_month": _OPT.EXPIRATION_MONTH, "expiration_day": _OPT.EXPIRATION_DAY, "delta": _OPT.DELTA,
        "gamma": _OPT.GAMMA, "theta": _OPT.THETA, "vega": _OPT.VEGA, "rho": _OPT.RHO,
        "underlying_price": _OPT.UNDERLYING_PRICE, "mark": _OPT.MARK, "quote_time": _OPT.QUOTE_TIME_MILLIS,
    },
    CHART_EQUITY: {
        "sequence": _CHART.SEQUENCE, "open": _CHART.OPEN_PRICE, "high": _CHART.HIGH_PRICE, "low": _CHART.LOW_PRICE,
        "close": _CHART.CLOSE_PRICE, "volume": _CHART.VOLUME, "start_ms": _CHART.CHART_TIME_MILLIS,
    },
}
#: The fields to subscribe, as schwab-py's enums (the symbol first, as Schwab expects).
EQUITY_FIELDS = [_EQ.SYMBOL, *FIELDS[LEVELONE_EQUITIES].values()]
OPTION_FIELDS = [_OPT.SYMBOL, *FIELDS[LEVELONE_OPTIONS].values()]


def _renamed(service: str) -> dict[str, str]:
    return {name: str(member.value) for name, member in FIELDS[service].items()}


class EquityUpdate(msgspec.Struct, rename=_renamed(LEVELONE_EQUITIES), kw_only=True):
    """A LEVELONE_EQUITIES item: the fields that changed (a snapshot: all of them); UNSET is unchanged."""

    key: str
    bid: float | None | UnsetType = UNSET
    ask: float | None | UnsetType = UNSET
    last: float | None | UnsetType = UNSET
    bid_size: int | UnsetType = UNSET
    ask_size: int | UnsetType = UNSET
    total_volume: int | UnsetType = UNSET
    last_size: int | UnsetType = UNSET
    quote_time: int | UnsetType = UNSET
    trade_time: int | UnsetType = UNSET


class OptionUpdate(msgspec.Struct, rename=_renamed(LEVELONE_OPTIONS), kw_only=True):
    """A LEVELONE_OPTIONS item, as `EquityUpdate`; contract terms may be absent (the key carries them)."""

    key: str
    bid: float | None | UnsetType = UNSET
    ask: float | None | UnsetType = UNSET
    last: float | None | UnsetType = UNSET
    mark: float | None | UnsetType = UNSET
    total_volume: int | UnsetType = UNSET
    open_interest: int | UnsetType = UNSET
    volatility: float | None | UnsetType = UNSET
    delta: float | None | UnsetType = UNSET
    gamma: float | None | UnsetType = UNSET
    theta: float | None | UnsetType = UNSET
    vega: float | None | UnsetType = UNSET
    rho: float | None | UnsetType = UNSET
    underlying_price: float | None | UnsetType = UNSET
    quote_time: int | UnsetType = UNSET
    strike: float | UnsetType = UNSET
    contract_type: str | UnsetType = UNSET
    underlying: str | UnsetType = UNSET
    expiration_year: int | UnsetType = UNSET
    expiration_month: int | UnsetType = UNSET
    expiration_day: int | UnsetType = UNSET


class ChartItem(msgspec.Struct, rename=_renamed(CHART_EQUITY), kw_only=True):
    """A CHART_EQUITY item: one complete minute bar."""

    key: str
    open: float
    high: float
    low: float
    close: float
    volume: float
    start_ms: int
    sequence: int = 0


Update = EquityUpdate | OptionUpdate | ChartItem
ITEM_TYPES: dict[str, type[Update]] = {
    LEVELONE_EQUITIES: EquityUpdate, LEVELONE_OPTIONS: OptionUpdate, CHART_EQUITY: ChartItem,
}


class _Entry(msgspec.Struct):
    """A `data` entry, its items left raw so each is decoded (and refused) on its own."""

    service: str
    timestamp: int
    content: list[msgspec.Raw]


class _ParsedEntry(msgspec.Struct):
    """A `data` entry as a lenient parser made it: its items are checked alike, from Python objects."""

    service: str
    timestamp: int
    content: list[Any]


@dataclass(frozen=True)
class Rejection:
    """An item (or an entry) that did not pass: `reason` is a short name to count by, `detail` a sentence."""

    service: str
    key: str
    reason: str
    detail: str
    excerpt: str


@dataclass
class Entry:
    """One `data` entry's checked items, with the frame's own timestamp (epoch ms)."""

    service: str
    frame_ms: int
    updates: list[Update] = field(default_factory=list)


@dataclass
class Decoded:
    entries: list[Entry] = field(default_factory=list)
    rejections: list[Rejection] = field(default_factory=list)


class Invalid(ValueError):
    """An item's value outside what Schwab can mean: the message says which and why."""

    def __init__(self, reason: str, detail: str):
        super().__init__(detail)
        self.reason = reason


_EQUITY_KEY = re.compile(r"[A-Z0-9$/][A-Z0-9./$-]{0,14}")
_entries = msgspec.json.Decoder(list[msgspec.Raw])
_entry = msgspec.json.Decoder(_Entry)
_items = {kind: msgspec.json.Decoder(kind) for kind in ITEM_TYPES.values()}
_key_only = msgspec.json.Decoder(dict)


def decode(data: msgspec.Raw | list[Any], services: frozenset[str] = frozenset(ITEM_TYPES),
           received_ms: int | None = None, live: bool = False) -> Decoded:
    """A message's `data`: each entry's checked updates, and each item that failed, with why.

    `data` is the raw JSON list as received, or, for a message only a lenient
    parser could read (Schwab writing `NaN` where JSON has no such thing), the
    list that parser made: its items are checked exactly alike. `received_ms`
    is the receive clock (epoch ms) each entry's timestamp is held to, `live`
    whether it came from a Schwab connection rather than a recording; without
    a clock (a test of the items alone) a timestamp need only be positive.
    """
    decoded = Decoded()
    try:
        entries: list[Any] = _entries.decode(data) if isinstance(data, msgspec.Raw) else msgspec.convert(data, list)
    except msgspec.DecodeError as error:
        decoded.rejections.append(Rejection("", "", "entry_malformed", str(error), excerpt(data)))
        return decoded
    for raw in entries:
        try:
            entry = _entry.decode(raw) if isinstance(raw, msgspec.Raw) else msgspec.convert(raw, _ParsedEntry)
        except msgspec.DecodeError as error:
            decoded.rejections.append(Rejection("", "", "entry_malformed", str(error), excerpt(raw)))
            continue
        if entry.service not in services:
            decoded.rejections.append(Rejection(entry.service, "", "service_not_subscribed",
                                                f"data for {entry.service!r}, which nobody subscribed", excerpt(raw)))
            continue
        refused = frame_time_refused(entry.timestamp, received_ms, live)
        if refused is not None:
            decoded.rejections.append(Rejection(entry.service, "", *refused, excerpt(raw)))
            continue
        checked = Entry(entry.service, entry.timestamp)
        kind = ITEM_TYPES[entry.service]
        for item in entry.content:
            try:
                update = _items[kind].decode(item) if isinstance(item, msgspec.Raw) else msgspec.convert(item, kind)
                checked.updates.append(check(update, entry.timestamp))
            except msgspec.ValidationError as error:
                decoded.rejections.append(Rejection(entry.service, key_of(item), "bad_type", str(error), excerpt(item)))
            except msgspec.DecodeError as error:
                decoded.rejections.append(Rejection(entry.service, "", "item_malformed", str(error), excerpt(item)))
            except Invalid as error:
                decoded.rejections.append(Rejection(entry.service, key_of(item), error.reason, str(error),
                                                    excerpt(item)))
            except Exception as error:  # what nobody foresaw costs its item, never the message or the connection
                decoded.rejections.append(Rejection(entry.service, key_of(item), "item_failed", repr(error),
                                                    excerpt(item)))
        decoded.entries.append(checked)
    return decoded


def frame_time_refused(frame_ms: int, received_ms: int | None, live: bool) -> tuple[str, str] | None:
    """Why an entry's own timestamp cannot vouch for its items' times (reason, detail), or None when it can."""
    if frame_ms <= 0:
        return "frame_time", f"frame timestamp {frame_ms}"
    if received_ms is None:
        return None
    if frame_ms > received_ms + FRAME_AHEAD:
        return "frame_in_future", (
            f"frame timestamp {when(frame_ms)} is {(frame_ms - received_ms) / 60_000:.0f} minutes ahead of this "
            f"host's clock ({when(received_ms)}), more than {FRAME_AHEAD // 60_000}: a damaged frame, or, if every "
            f"frame says so, this host's clock is behind")
    if live and frame_ms < received_ms - FRAME_BEHIND:
        return "frame_too_old", (
            f"live frame timestamp {when(frame_ms)} is {(received_ms - frame_ms) / 3_600_000:.0f} hours behind this "
            f"host's clock ({when(received_ms)}), more than {FRAME_BEHIND // 3_600_000}: a damaged frame, or, if "
            f"every frame says so, this host's clock is ahead")
    return None


def when(ms: int) -> str:
    """An epoch-ms time for a log line: UTC ISO 8601, or the number itself where no calendar holds it."""
    try:
        return datetime.fromtimestamp(ms / 1000, timezone.utc).isoformat()
    except (OverflowError, OSError, ValueError):
        return f"{ms} ms after 1970"


def check(update: Update, frame_ms: int) -> Update:
    """`update` if all it carries is plausible, with zero quotes and -999 greeks as None; else Invalid."""
    if isinstance(update, OptionUpdate):
        _check_option(update, frame_ms)
    elif isinstance(update, EquityUpdate):
        _check_key(update.key, _EQUITY_KEY)
        update.bid, update.ask = _quote(update.bid, "bid"), _quote(update.ask, "ask")
        update.last = _quote(update.last, "last")
        _counts(update, ("bid_size", "ask_size", "total_volume", "last_size"))
        _times(update, ("quote_time", "trade_time"), frame_ms)
    else:
        _check_bar(update, frame_ms)
    return update


def _check_option(update: OptionUpdate, frame_ms: int) -> None:
    try:
        contract = option_symbols.parse(update.key)
    except ValueError:
        raise Invalid("key_implausible", f"{update.key[:40]!r} is not an OSI option symbol") from None
    for name in ("bid", "ask", "last", "mark"):
        setattr(update, name, _quote(getattr(update, name), name))
    for name in ("underlying_price", "strike"):
        value = getattr(update, name)
        if value is not UNSET and value is not None:
            _price(value, name)
    for name in ("volatility", "delta", "gamma", "theta", "vega", "rho"):
        value = getattr(update, name)
        if value is not UNSET and value is not None:
            if value == NOT_COMPUTED:
                setattr(update, name, None)
            elif not math.isfinite(value) or (name == "volatility" and value < 0):
                raise Invalid("greek_invalid", f"{name} is {value}")
    _counts(update, ("total_volume", "open_interest"))
    _times(update, ("quote_time",), frame_ms)
    if update.contract_type is not UNSET and update.contract_type != contract.put_call:
        raise Invalid("contract_terms", f"contract type {update.contract_type!r} but the key says {contract.put_call}")
    if update.underlying is not UNSET and not _EQUITY_KEY.fullmatch(update.underlying):
        raise Invalid("contract_terms", f"underlying {update.underlying[:40]!r} is not a symbol")
    expiry = (update.expiration_year, update.expiration_month, update.expiration_day)
    if UNSET not in expiry:
        try:
            date(*expiry)
        except (TypeError, ValueError, OverflowError):
            raise Invalid("contract_terms", f"expiration {str(expiry)[:80]} is not a date") from None


def _check_bar(bar: ChartItem, frame_ms: int) -> None:
    _check_key(bar.key, _EQUITY_KEY)
    for name in ("open", "high", "low", "close"):
        _price(getattr(bar, name), name)
    if not bar.low <= min(bar.open, bar.close) <= max(bar.open, bar.close) <= bar.high:
        raise Invalid("bar_inconsistent", f"open {bar.open}, high {bar.high}, low {bar.low}, close {bar.close}")
    if not math.isfinite(bar.volume) or bar.volume < 0:
        raise Invalid("size_invalid", f"volume is {bar.volume}")
    if bar.volume > VOLUME_CEILING:
        raise Invalid("size_implausible", f"volume is {bar.volume:g}, above {VOLUME_CEILING:g}")
    _counts(bar, ("sequence",))
    _times(bar, ("start_ms",), frame_ms)


def _check_key(key: str, pattern: re.Pattern[str]) -> None:
    if not pattern.fullmatch(key):
        raise Invalid("key_implausible", f"key {key[:40]!r} ({len(key)} characters) is not a symbol")


def _price(value: float, name: str) -> float:
    if not math.isfinite(value):
        raise Invalid("price_not_finite", f"{name} is {value}")
    if not 0 < value < PRICE_CEILING:
        raise Invalid("price_out_of_range", f"{name} is {value}: not above 0 and below {PRICE_CEILING:g}")
    return value


def _quote(value: float | None | UnsetType, name: str) -> float | None | UnsetType:
    """A bid, ask, last or mark: 0 (or null) is no quote; anything else must be a price."""
    if value is UNSET:
        return UNSET
    return None if value is None or value == 0 else _price(value, name)


def _counts(update: Update, names: tuple[str, ...]) -> None:
    for name in names:
        value = getattr(update, name)
        if value is UNSET or value is None:
            continue
        if value < 0:
            raise Invalid("size_invalid", f"{name} is {value}")
        if value > VOLUME_CEILING:
            raise Invalid("size_implausible", f"{name} is {str(value)[:30]}, above {VOLUME_CEILING:g}")


def _times(update: Update, names: tuple[str, ...], frame_ms: int) -> None:
    for name in names:
        value = getattr(update, name)
        if value is not UNSET and value is not None and not frame_ms - TIME_BEHIND <= value <= frame_ms + TIME_AHEAD:
            raise Invalid("time_out_of_range", f"{name} {value} is not within {TIME_BEHIND // 86_400_000} days before "
                                               f"to {TIME_AHEAD // 60_000} minutes after the frame's {frame_ms}")


def key_of(item: Any) -> str:
    """The item's key when it has a readable one, cut short: for counting and for the log only."""
    try:
        parsed = _key_only.decode(item) if isinstance(item, msgspec.Raw) else item
    except msgspec.DecodeError:
        return ""
    key = parsed.get("key") if isinstance(parsed, dict) else None
    return key[:40] if isinstance(key, str) else ""


def excerpt(raw: Any) -> str:
    """At most EXCERPT characters of what was received, for the log."""
    if isinstance(raw, msgspec.Raw):
        text = bytes(raw).decode(errors="replace")
    else:
        text = raw if isinstance(raw, str) else json.dumps(raw, default=repr)
    return text if len(text) <= EXCERPT else text[:EXCERPT] + "…"


class LogLimiter:
    """Says whether to log a (key, reason) now: at most once per `every` seconds each, in bounded memory.

    A flood of bad items, or of distinct bogus keys, must not flood the disk:
    past `most` pairs remembered, the oldest are forgotten (and may log again).
    """

    def __init__(self, every: float = 60.0, most: int = 10_000):
        self.every = every
        self.most = most
        self._last: OrderedDict[tuple[str, str], float] = OrderedDict()

    def __len__(self) -> int:
        return len(self._last)

    def allow(self, key: str, reason: str, now: float) -> bool:
        pair = (key, reason)
        last = self._last.get(pair)
        if last is not None and now - last < self.every:
            return False
        self._last[pair] = now
        self._last.move_to_end(pair)
        while len(self._last) > self.most:
            self._last.popitem(last=False)
        return True
