"""LEVELONE_FUTURES: a future's top of book, last trade and day volume, as changes.

Keys: a product's continuous front month (`/ES`, `/NQ`, `/MES`) or one
contract (`/ESZ26`). Records: `EquityTrade` (its `contract` the contract the
trade was in: Schwab's active contract of a continuous key, the key itself of
an explicit one) and `EquityQuote`, derived as a stock's are
(`levelone_equities.py`: a trade is the growth of TOTAL_VOLUME), except that
the day volume restarts with CME's trading day, at 18:00 New York.
"""

from __future__ import annotations

import re
from datetime import date, datetime, timedelta
from typing import Any

import msgspec
from msgspec import UNSET, UnsetType
from schwab.streaming import StreamClient

from common.feed import checks
from common.feed.checks import Invalid
from common.feed.levelone import CME_DAY_AHEAD, NEW_YORK, NewYorkDay
from common.feed.market_hours import CME
from common.feed.service import TICKERS, LevelOneServing, Service, constant, net_change, percent_change, read, renamed
from common.feed.services.levelone_equities import EquityBook
from common.feed.services.levelone_equities import check as equity_check
from common.symbols import FUTURE, MONTH_CODES, SPELLINGS
from common.transport.messages import EquityQuote, EquityTrade

NAME = "LEVELONE_FUTURES"
SCHWAB = StreamClient.LevelOneFuturesFields

FIELDS = {
    "bid": SCHWAB.BID_PRICE, "ask": SCHWAB.ASK_PRICE, "last": SCHWAB.LAST_PRICE, "bid_size": SCHWAB.BID_SIZE,
    "ask_size": SCHWAB.ASK_SIZE, "total_volume": SCHWAB.TOTAL_VOLUME, "last_size": SCHWAB.LAST_SIZE,
    "quote_time": SCHWAB.QUOTE_TIME_MILLIS, "trade_time": SCHWAB.TRADE_TIME_MILLIS,
    "active_symbol": SCHWAB.FUTURE_ACTIVE_SYMBOL,
}


class FuturesUpdate(msgspec.Struct, rename=renamed(FIELDS), kw_only=True):
    """A LEVELONE_FUTURES item: a stock's fields (`EquityUpdate`), at the future's numbers, and the active
    contract. (Not a subclass: msgspec keeps a parent's renames, and the two number their times apart.)"""

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
    active_symbol: str | UnsetType = UNSET
    #: Schwab's word on this item: 15-minute-old data for an account not entitled to real-time.
    delayed: bool | UnsetType = UNSET


def check(update: FuturesUpdate, frame_ms: int) -> FuturesUpdate:
    """A stock's checks, a futures symbol for a key, and one for the active contract."""
    checks.key(update.key, SPELLINGS[FUTURE])
    if update.active_symbol is not UNSET and not SPELLINGS[FUTURE].fullmatch(update.active_symbol):
        raise Invalid("contract_terms", f"active contract {update.active_symbol[:40]!r} is not a futures symbol")
    return equity_check(update, frame_ms)


class FuturesBook(EquityBook):
    """Every future's merged state on one connection: a stock's merge on CME's trading day, each trade with the
    contract it was in."""

    def __init__(self) -> None:
        super().__init__(NewYorkDay(CME_DAY_AHEAD))
        self.active: dict[str, str] = {}

    def merge(self, update: FuturesUpdate, frame_ms: int, received_ns: int) -> tuple[EquityTrade | EquityQuote, ...]:
        if update.active_symbol is not UNSET:
            self.active[update.key] = update.active_symbol
        return super().merge(update, frame_ms, received_ns)

    def contract(self, update: Any) -> str | None:
        return self.active.get(update.key, update.key)

    def reset(self) -> None:
        super().reset()
        self.active.clear()


_CONTRACT = re.compile(rf"(/[A-Z0-9]{{1,4}}?)([{MONTH_CODES}])([0-9]{{2}})")
#: Equity index futures list a contract a quarter (March, June, September, December) and roll to the next about
#: eight days before the third Friday of the month a contract expires.
QUARTERLY, ROLL_DAYS = "HMUZ", 8


def product_of(symbol: str) -> str:
    """The product of a futures symbol: `/ES` of `/ESZ26` and of `/ES`."""
    explicit = _CONTRACT.fullmatch(symbol)
    return explicit.group(1) if explicit else symbol


def active_contract(symbol: str, now_ms: int) -> str:
    """The contract a symbol trades in at `now_ms`: an explicit contract itself, a continuous one its front
    quarterly month (as Schwab's FUTURE_ACTIVE_SYMBOL says; how the simulator serves it)."""
    if _CONTRACT.fullmatch(symbol):
        return symbol
    today = datetime.fromtimestamp(now_ms / 1000, NEW_YORK).date()
    year, month = today.year, today.month
    while True:
        if MONTH_CODES[month - 1] in QUARTERLY:
            first = date(year, month, 1)
            third_friday = first + timedelta(days=(4 - first.weekday()) % 7 + 14)
            if today <= third_friday - timedelta(days=ROLL_DAYS):
                return f"{symbol}{MONTH_CODES[month - 1]}{year % 100:02d}"
        year, month = (year + 1, 1) if month == 12 else (year, month + 1)


#: How the simulator reads each field from a simulated future's quote, by field number.
READERS = {str(field.value): reader for field, reader in {
    SCHWAB.BID_PRICE: read("bid"),
    SCHWAB.ASK_PRICE: read("ask"),
    SCHWAB.LAST_PRICE: read("last"),
    SCHWAB.BID_SIZE: read("bid_size"),
    SCHWAB.ASK_SIZE: read("ask_size"),
    SCHWAB.BID_ID: constant("?"),
    SCHWAB.ASK_ID: constant("?"),
    SCHWAB.TOTAL_VOLUME: read("total_volume"),
    SCHWAB.LAST_SIZE: read("last_size"),
    SCHWAB.QUOTE_TIME_MILLIS: read("quote_time_ms"),
    SCHWAB.TRADE_TIME_MILLIS: read("trade_time_ms"),
    SCHWAB.HIGH_PRICE: read("high"),
    SCHWAB.LOW_PRICE: read("low"),
    SCHWAB.CLOSE_PRICE: read("close"),
    SCHWAB.EXCHANGE_ID: constant("@"),
    SCHWAB.DESCRIPTION: read("description"),
    SCHWAB.LAST_ID: constant("?"),
    SCHWAB.OPEN_PRICE: read("open"),
    SCHWAB.NET_CHANGE: net_change("last"),
    SCHWAB.FUTURE_CHANGE_PERCENT: percent_change("last"),
    SCHWAB.EXCHANGE_NAME: constant("XCME"),
    SCHWAB.SECURITY_STATUS: constant("Normal"),
    SCHWAB.OPEN_INTEREST: constant(2_000_000),
    SCHWAB.MARK: read("mark"),
    SCHWAB.TICK: constant(0.25),
    SCHWAB.TICK_AMOUNT: constant(12.5),
    SCHWAB.PRODUCT: lambda q: product_of(q.symbol),
    SCHWAB.FUTURE_PRICE_FORMAT: constant("D,D"),
    SCHWAB.FUTURE_TRADING_HOURS: constant("GLBX(de=1640;0=-17001600;1=r-17001600d-15551640;7=d-16401555)"),
    SCHWAB.FUTURE_IS_TRADABLE: constant(True),
    SCHWAB.FUTURE_MULTIPLIER: constant(50.0),
    SCHWAB.FUTURE_IS_ACTIVE: constant(True),
    SCHWAB.FUTURE_SETTLEMENT_PRICE: read("close"),
    SCHWAB.FUTURE_ACTIVE_SYMBOL: lambda q: active_contract(q.symbol, q.quote_time_ms),
    SCHWAB.FUTURE_EXPIRATION_DATE: constant(0),
    SCHWAB.EXPIRATION_STYLE: constant(""),
    SCHWAB.ASK_TIME_MILLIS: read("quote_time_ms"),
    SCHWAB.BID_TIME_MILLIS: read("quote_time_ms"),
    SCHWAB.QUOTED_IN_SESSION: constant(True),
    SCHWAB.SETTLEMENT_DATE: constant(0),
}.items()}


def header(q: Any, delayed: bool) -> dict[str, Any]:
    return {"key": q.symbol, "delayed": delayed, "assetMainType": "FUTURE"}


SERVICE = Service(NAME, SCHWAB, FIELDS, FuturesUpdate, check, FuturesBook, (EquityTrade, EquityQuote),
                  "level_one_futures_subs", TICKERS, LevelOneServing(READERS, header), frozenset({FUTURE}), CME)
