"""LEVELONE_EQUITIES: a ticker's top of book, last trade and day volume, as changes; an index's level.

Keys: a ticker (`AAPL`, `BRK.B`) or an index (`$SPX`). Records: `EquityTrade`
and `EquityQuote` for a ticker, `IndexLevel` for an index: each update that
carries its last price is a level (the snapshot's too: that is the level as
it stood), and nothing else is made of it, since an index has neither volume
nor a book.

A trade is an update whose TOTAL_VOLUME grew; its size is the growth,
because Schwab throttles updates and several trades fold into one. The first
snapshot of a key is state, not a trade: its volume happened before we looked.
A cumulative volume that shrinks on a later New York day restarted with
the day: its new value is that day's first trades. One that shrinks within
the same day is Schwab correcting its count: no trade is invented, the new
value is the baseline, and the update is counted as `volume_shrank`. One that
grows by more than MAX_VOLUME_JUMP in one update is damage, not trading: no
trade is made of it (`volume_jump`), and the new value is the baseline, so a
damaged count is corrected by Schwab's next (a `volume_shrank`) and a real one
goes on; either way the key is never stuck refusing.

A trade without a trade time of its own, or a quote without a quote time,
takes the frame's timestamp. A trade before any last price is known cannot
be completed: `no_price`; the baseline then stays where it was, so the shares
wait for the first priced update, which takes them all. A last price of 0
(the edge's None) is Schwab having no price to give, not a trade at none: the
last known price stays, and the next growth is priced by it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import msgspec
from msgspec import UNSET, UnsetType
from schwab.streaming import StreamClient

from common.feed import checks
from common.feed.levelone import Incomplete, NewYorkDay
from common.feed.service import (
    TICKERS,
    LevelOneServing,
    Service,
    constant,
    net_change,
    percent_change,
    read,
    renamed,
)
from common.symbols import EQUITY, INDEX, is_index
from common.transport.messages import EquityQuote, EquityTrade, IndexLevel

NAME = "LEVELONE_EQUITIES"
SCHWAB = StreamClient.LevelOneEquityFields
#: More shares than one update of one symbol carries: Schwab sends an update a second or so, and the largest
#: prints (closing crosses on index-inclusion days) are a few hundred million shares.
MAX_VOLUME_JUMP = 1_000_000_000

FIELDS = {
    "bid": SCHWAB.BID_PRICE, "ask": SCHWAB.ASK_PRICE, "last": SCHWAB.LAST_PRICE, "bid_size": SCHWAB.BID_SIZE,
    "ask_size": SCHWAB.ASK_SIZE, "total_volume": SCHWAB.TOTAL_VOLUME, "last_size": SCHWAB.LAST_SIZE,
    "quote_time": SCHWAB.QUOTE_TIME_MILLIS, "trade_time": SCHWAB.TRADE_TIME_MILLIS,
}


class EquityUpdate(msgspec.Struct, rename=renamed(FIELDS), kw_only=True):
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
    #: Schwab's word on this item: 15-minute-old data for an account not entitled to real-time.
    delayed: bool | UnsetType = UNSET


def check(update: EquityUpdate, frame_ms: int) -> EquityUpdate:
    checks.key(update.key)
    update.bid, update.ask = checks.quote(update.bid, "bid"), checks.quote(update.ask, "ask")
    update.last = checks.quote(update.last, "last")
    checks.counts(update, ("bid_size", "ask_size", "total_volume", "last_size"))
    checks.times(update, ("quote_time", "trade_time"), frame_ms)
    return update


@dataclass(slots=True)
class EquityState:
    bid: float | None = None
    ask: float | None = None
    last: float | None = None
    bid_size: int = 0
    ask_size: int = 0
    total_volume: int | None = None
    last_size: int = 0
    volume_day: int = 0


class EquityBook:
    """Every equity key's merged state on one connection. `day` says when the day's cumulative volume restarts
    (a stock's at midnight New York; a future's with CME's trading day, `levelone_futures.py`)."""

    def __init__(self, day: NewYorkDay | None = None) -> None:
        self.states: dict[str, EquityState] = {}
        self.day = NewYorkDay() if day is None else day

    def contract(self, update: Any) -> str | None:
        """The contract a trade of `update`'s key was in: none for a stock."""
        return None

    def merge(self, update: EquityUpdate, frame_ms: int,
              received_ns: int) -> tuple[EquityTrade | EquityQuote, ...] | tuple[IndexLevel, ...]:
        """The trade and/or quote one update stands for, or an index's level; Incomplete when a trade cannot be
        completed."""
        if is_index(update.key):
            if update.last is UNSET or update.last is None:
                return ()
            return (IndexLevel(update.key, frame_ms if update.trade_time is UNSET else update.trade_time, update.last,
                               received_ns),)
        state = self.states.get(update.key)
        first = state is None
        if state is None:
            state = self.states[update.key] = EquityState()
        before = state.total_volume
        if update.bid is not UNSET:
            state.bid = update.bid
        if update.ask is not UNSET:
            state.ask = update.ask
        if update.last is not UNSET and update.last is not None:
            state.last = update.last
        if update.bid_size is not UNSET:
            state.bid_size = update.bid_size
        if update.ask_size is not UNSET:
            state.ask_size = update.ask_size
        if update.last_size is not UNSET:
            state.last_size = update.last_size
        quoted: tuple[EquityQuote, ...] = ()
        if (update.bid is not UNSET or update.ask is not UNSET or update.bid_size is not UNSET
                or update.ask_size is not UNSET):
            quoted = (EquityQuote(update.key, frame_ms if update.quote_time is UNSET else update.quote_time,
                                  state.bid, state.ask, state.bid_size, state.ask_size, received_ns),)
        if update.total_volume is UNSET:
            return quoted
        volume, day = update.total_volume, self.day(frame_ms)
        new_day = day != state.volume_day
        if first or before is None or volume == before:
            state.total_volume, state.volume_day = volume, day
            return quoted
        if volume < before and not new_day:
            state.total_volume, state.volume_day = volume, day
            raise Incomplete("volume_shrank", f"{update.key}: day volume went from {before} to {volume} within a day")
        size = volume - before if volume > before else volume
        if size > MAX_VOLUME_JUMP:
            state.total_volume, state.volume_day = volume, day
            raise Incomplete("volume_jump", f"{update.key}: day volume went from {before} to {volume}, "
                                            f"more than {MAX_VOLUME_JUMP:,} shares in one update")
        if state.last is None:
            raise Incomplete("no_price", f"{update.key}: volume grew before any last price was known")
        state.total_volume, state.volume_day = volume, day
        trade = EquityTrade(
            symbol=update.key,
            trade_time_ms=frame_ms if update.trade_time is UNSET else update.trade_time,
            price=state.last,
            size=size,
            day_volume=volume,
            last_size=state.last_size,
            bid=state.bid,
            ask=state.ask,
            received_ns=received_ns,
            contract=self.contract(update),
        )
        return (trade, *quoted)

    def reset(self) -> None:
        self.states.clear()


#: How the simulator reads each field from a quote, by field number. A session reads only the fields it
#: subscribed (ingest asks for 9 of 51), once per update sent.
READERS = {str(field.value): reader for field, reader in {
    SCHWAB.BID_PRICE: read("bid"),
    SCHWAB.ASK_PRICE: read("ask"),
    SCHWAB.LAST_PRICE: read("last"),
    SCHWAB.BID_SIZE: read("bid_size"),
    SCHWAB.ASK_SIZE: read("ask_size"),
    SCHWAB.ASK_ID: constant("Q"),
    SCHWAB.BID_ID: constant("Q"),
    SCHWAB.TOTAL_VOLUME: read("total_volume"),
    SCHWAB.LAST_SIZE: read("last_size"),
    SCHWAB.HIGH_PRICE: read("high"),
    SCHWAB.LOW_PRICE: read("low"),
    SCHWAB.CLOSE_PRICE: read("close"),
    SCHWAB.EXCHANGE_ID: constant("Q"),
    SCHWAB.MARGINABLE: constant(True),
    SCHWAB.DESCRIPTION: read("description"),
    SCHWAB.LAST_ID: constant("Q"),
    SCHWAB.OPEN_PRICE: read("open"),
    SCHWAB.NET_CHANGE: net_change("last"),
    SCHWAB.HIGH_PRICE_52_WEEK: lambda q: round(q.close * 1.25, 2),
    SCHWAB.LOW_PRICE_52_WEEK: lambda q: round(q.close * 0.75, 2),
    SCHWAB.PE_RATIO: constant(25.5),
    SCHWAB.DIVIDEND_AMOUNT: constant(1.5),
    SCHWAB.DIVIDEND_YIELD: constant(0.75),
    SCHWAB.NAV: constant(0.0),
    SCHWAB.EXCHANGE_NAME: constant("NASDAQ"),
    SCHWAB.DIVIDEND_DATE: constant("2025-12-15 00:00:00.0"),
    SCHWAB.REGULAR_MARKET_QUOTE: constant(True),
    SCHWAB.REGULAR_MARKET_TRADE: constant(True),
    SCHWAB.REGULAR_MARKET_LAST_PRICE: read("last"),
    SCHWAB.REGULAR_MARKET_LAST_SIZE: read("last_size"),
    SCHWAB.REGULAR_MARKET_NET_CHANGE: net_change("last"),
    SCHWAB.SECURITY_STATUS: constant("Normal"),
    SCHWAB.MARK: read("mark"),
    SCHWAB.QUOTE_TIME_MILLIS: read("quote_time_ms"),
    SCHWAB.TRADE_TIME_MILLIS: read("trade_time_ms"),
    SCHWAB.REGULAR_MARKET_TRADE_MILLIS: read("trade_time_ms"),
    SCHWAB.BID_TIME_MILLIS: read("quote_time_ms"),
    SCHWAB.ASK_TIME_MILLIS: read("quote_time_ms"),
    SCHWAB.ASK_MIC_ID: constant("XNAS"),
    SCHWAB.BID_MIC_ID: constant("XNAS"),
    SCHWAB.LAST_MIC_ID: constant("XNAS"),
    SCHWAB.NET_CHANGE_PERCENT: percent_change("last"),
    SCHWAB.REGULAR_MARKET_CHANGE_PERCENT: percent_change("last"),
    SCHWAB.MARK_CHANGE: net_change("mark"),
    SCHWAB.MARK_CHANGE_PERCENT: percent_change("mark"),
    SCHWAB.HTB_QUANTITY: constant(50_000_000),
    SCHWAB.HTB_RATE: constant(0.0),
    SCHWAB.HARD_TO_BORROW: constant(0),
    SCHWAB.IS_SHORTABLE: constant(1),
    SCHWAB.POST_MARKET_NET_CHANGE: constant(0.0),
    SCHWAB.POST_MARKET_NET_CHANGE_PERCENT: constant(0.0),
}.items()}


def header(q: Any, delayed: bool) -> dict[str, Any]:
    """The keys of a snapshot that are not numbered."""
    if is_index(q.symbol):
        return {"key": q.symbol, "delayed": delayed, "assetMainType": "INDEX", "assetSubType": "INX", "cusip": ""}
    return {"key": q.symbol, "delayed": delayed, "assetMainType": "EQUITY",
            "assetSubType": "ETF" if q.description.endswith(("ETF", "Trust")) else "COE", "cusip": q.cusip}


SERVICE = Service(NAME, SCHWAB, FIELDS, EquityUpdate, check, EquityBook, (EquityTrade, IndexLevel, EquityQuote),
                  "level_one_equity_subs", TICKERS, LevelOneServing(READERS, header), frozenset({EQUITY, INDEX}))
