"""LEVELONE_OPTIONS: an option contract's quote, greeks and volume, as changes.

Keys: an OSI option symbol (`SPY   251021C00580000`, `SPXW  251208C06880000`),
the contracts the options actor asks for. Records: `OptionQuote`, every
update one, built from the contract's merged state. A contract's type,
strike, expiry and underlying come from its key (the OSI symbol carries all
four; an index's root names its index: SPXW is `$SPX`'s) until Schwab sends
them.
Schwab's -999 for a greek or a volatility it could not compute is None.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass
from datetime import date, datetime, timedelta, timezone
from typing import Any

import msgspec
from msgspec import UNSET, UnsetType
from schwab.streaming import StreamClient

from common.feed import checks, option_symbols
from common.feed.checks import Invalid
from common.feed.option_symbols import OptionContract
from common.feed.service import (
    CONTRACTS,
    LevelOneServing,
    Service,
    constant,
    net_change,
    percent_change,
    read,
    renamed,
)
from common.symbols import EQUITY, INDEX
from common.transport.messages import OptionQuote

NAME = "LEVELONE_OPTIONS"
SCHWAB = StreamClient.LevelOneOptionFields
#: Schwab's placeholder for a greek or volatility it could not compute.
NOT_COMPUTED = -999.0

FIELDS = {
    "bid": SCHWAB.BID_PRICE, "ask": SCHWAB.ASK_PRICE, "last": SCHWAB.LAST_PRICE, "total_volume": SCHWAB.TOTAL_VOLUME,
    "open_interest": SCHWAB.OPEN_INTEREST, "volatility": SCHWAB.VOLATILITY,
    "expiration_year": SCHWAB.EXPIRATION_YEAR, "strike": SCHWAB.STRIKE_TYPE, "contract_type": SCHWAB.CONTRACT_TYPE,
    "underlying": SCHWAB.UNDERLYING, "expiration_month": SCHWAB.EXPIRATION_MONTH,
    "expiration_day": SCHWAB.EXPIRATION_DAY, "delta": SCHWAB.DELTA, "gamma": SCHWAB.GAMMA, "theta": SCHWAB.THETA,
    "vega": SCHWAB.VEGA, "rho": SCHWAB.RHO, "underlying_price": SCHWAB.UNDERLYING_PRICE, "mark": SCHWAB.MARK,
    "quote_time": SCHWAB.QUOTE_TIME_MILLIS, "indicative_ask": SCHWAB.INDICATIVE_ASKING_PRICE,
    "indicative_bid": SCHWAB.INDICATIVE_BID_PRICE, "indicative_time": SCHWAB.INDICATIVE_QUOTE_TIME,
}


class OptionUpdate(msgspec.Struct, rename=renamed(FIELDS), kw_only=True):
    """A LEVELONE_OPTIONS item: the fields that changed; contract terms may be absent (the key carries them)."""

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
    indicative_bid: float | None | UnsetType = UNSET
    indicative_ask: float | None | UnsetType = UNSET
    indicative_time: int | None | UnsetType = UNSET
    #: Schwab's word on this item: 15-minute-old data for an account not entitled to real-time.
    delayed: bool | UnsetType = UNSET


def check(update: OptionUpdate, frame_ms: int) -> OptionUpdate:
    try:
        contract = option_symbols.parse(update.key)
    except ValueError:
        raise Invalid("key_implausible", f"{update.key[:40]!r} is not an OSI option symbol") from None
    for name in ("bid", "ask", "last", "mark", "indicative_bid", "indicative_ask"):
        setattr(update, name, checks.quote(getattr(update, name), name))
    if update.indicative_time == 0:  # Schwab's 0: no indicative quote (every stock option)
        update.indicative_time = None
    for name in ("underlying_price", "strike"):
        value = getattr(update, name)
        if value is not UNSET and value is not None:
            checks.price(value, name)
    for name in ("volatility", "delta", "gamma", "theta", "vega", "rho"):
        value = getattr(update, name)
        if value is not UNSET and value is not None:
            if value == NOT_COMPUTED:
                setattr(update, name, None)
            elif not math.isfinite(value) or (name == "volatility" and value < 0):
                raise Invalid("greek_invalid", f"{name} is {value}")
    checks.counts(update, ("total_volume", "open_interest"))
    checks.times(update, ("quote_time", "indicative_time"), frame_ms)
    if update.contract_type is not UNSET and update.contract_type != contract.put_call:
        raise Invalid("contract_terms", f"contract type {update.contract_type!r} but the key says {contract.put_call}")
    if update.underlying is not UNSET and not checks.SYMBOL_KEY.fullmatch(update.underlying):
        raise Invalid("contract_terms", f"underlying {update.underlying[:40]!r} is not a symbol")
    expiry = (update.expiration_year, update.expiration_month, update.expiration_day)
    if UNSET not in expiry:
        try:
            date(*expiry)
        except (TypeError, ValueError, OverflowError):
            raise Invalid("contract_terms", f"expiration {str(expiry)[:80]} is not a date") from None
    return update


@dataclass(slots=True)
class OptionState:
    """An option's merged fields; the contract terms start as its key says."""

    underlying: str
    contract_type: str
    strike: float
    expiration: date
    bid: float | None = None
    ask: float | None = None
    last: float | None = None
    mark: float | None = None
    total_volume: int = 0
    open_interest: int = 0
    volatility: float | None = None
    delta: float | None = None
    gamma: float | None = None
    theta: float | None = None
    vega: float | None = None
    rho: float | None = None
    underlying_price: float | None = None
    indicative_bid: float | None = None
    indicative_ask: float | None = None
    indicative_time: int | None = None


#: The option fields an update may carry that the state takes as they are (the expiry comes in three parts).
_TAKEN = ("underlying", "contract_type", "strike", "bid", "ask", "last", "mark", "total_volume", "open_interest",
          "volatility", "delta", "gamma", "theta", "vega", "rho", "underlying_price", "indicative_bid",
          "indicative_ask", "indicative_time")


class OptionBook:
    """Every option contract's merged state on one connection."""

    def __init__(self) -> None:
        self.states: dict[str, OptionState] = {}

    def merge(self, update: OptionUpdate, frame_ms: int, received_ns: int) -> tuple[OptionQuote]:
        state = self.states.get(update.key)
        if state is None:
            contract = option_symbols.parse(update.key)  # the edge checked it is one
            state = self.states[update.key] = OptionState(option_symbols.underlying_of(contract), contract.put_call,
                                                          contract.strike, contract.expiration)
        for name in _TAKEN:
            value = getattr(update, name)
            if value is not UNSET:
                setattr(state, name, value)
        if update.expiration_year is not UNSET and update.expiration_month is not UNSET \
                and update.expiration_day is not UNSET:
            state.expiration = date(update.expiration_year, update.expiration_month, update.expiration_day)
        return (OptionQuote(
            symbol=update.key,
            underlying=state.underlying,
            quote_time_ms=frame_ms if update.quote_time is UNSET else update.quote_time,
            contract_type=state.contract_type,
            strike=state.strike,
            expiration=state.expiration.isoformat(),
            last=state.last,
            bid=state.bid,
            ask=state.ask,
            mark=state.mark,
            total_volume=state.total_volume,
            open_interest=state.open_interest,
            volatility=state.volatility,
            delta=state.delta,
            gamma=state.gamma,
            theta=state.theta,
            vega=state.vega,
            rho=state.rho,
            underlying_price=state.underlying_price,
            received_ns=received_ns,
            indicative_bid=state.indicative_bid,
            indicative_ask=state.indicative_ask,
            indicative_time_ms=state.indicative_time,
        ),)

    def reset(self) -> None:
        self.states.clear()


# ---- how the simulator serves it ------------------------------------------------------------------

_N = {field.name: str(field.value) for field in SCHWAB}


@functools.lru_cache(maxsize=8192)  # a day's listings several times over; each entry is a few hundred bytes
def contract_facts(c: OptionContract) -> dict[str, Any]:
    """The fields a contract fixes that take work to write: worked out once per contract."""
    last_day = datetime(c.expiration.year, c.expiration.month, c.expiration.day, tzinfo=timezone.utc) + timedelta(days=1)
    return {
        _N["DESCRIPTION"]: option_symbols.description(c),
        _N["DELIVERABLES"]: f"100 {option_symbols.underlying_of(c)}",
        _N["UV_EXPIRATION_TYPE"]: "S" if c.expiration.weekday() == 4 else "W",
        _N["LAST_TRADING_DAY"]: int(last_day.timestamp() * 1000),
    }


def _fact(name: str) -> Any:
    number = _N[name]
    return lambda quote: contract_facts(quote.contract)[number]


def _indexed(q: Any) -> bool:
    return option_symbols.underlying_of(q.contract) != q.contract.underlying


def intrinsic(q: Any) -> float:
    c = q.contract
    return round(q.underlying_price - c.strike if c.put_call == "C" else c.strike - q.underlying_price, 4)


#: How the simulator reads each field from a simulated option quote, by field number.
READERS = {str(field.value): reader for field, reader in {
    SCHWAB.DESCRIPTION: _fact("DESCRIPTION"),
    SCHWAB.BID_PRICE: read("bid"),
    SCHWAB.ASK_PRICE: read("ask"),
    SCHWAB.LAST_PRICE: read("last"),
    SCHWAB.HIGH_PRICE: read("high"),
    SCHWAB.LOW_PRICE: read("low"),
    SCHWAB.CLOSE_PRICE: read("close"),
    SCHWAB.TOTAL_VOLUME: read("total_volume"),
    SCHWAB.OPEN_INTEREST: read("open_interest"),
    SCHWAB.VOLATILITY: read("volatility"),
    SCHWAB.MONEY_INTRINSIC_VALUE: intrinsic,
    SCHWAB.EXPIRATION_YEAR: read("contract.expiration.year"),
    SCHWAB.MULTIPLIER: constant(100),
    SCHWAB.DIGITS: constant(2),
    SCHWAB.OPEN_PRICE: read("open"),
    SCHWAB.BID_SIZE: read("bid_size"),
    SCHWAB.ASK_SIZE: read("ask_size"),
    SCHWAB.LAST_SIZE: read("last_size"),
    SCHWAB.NET_CHANGE: net_change("last"),
    SCHWAB.STRIKE_TYPE: read("contract.strike"),
    SCHWAB.CONTRACT_TYPE: read("contract.put_call"),
    SCHWAB.UNDERLYING: lambda q: option_symbols.underlying_of(q.contract),
    SCHWAB.EXPIRATION_MONTH: read("contract.expiration.month"),
    SCHWAB.DELIVERABLES: _fact("DELIVERABLES"),
    SCHWAB.TIME_VALUE: lambda q: round(q.mark - max(intrinsic(q), 0.0), 4),
    SCHWAB.EXPIRATION_DAY: read("contract.expiration.day"),
    SCHWAB.DAYS_TO_EXPIRATION: read("days_to_expiration"),
    SCHWAB.DELTA: read("delta"),
    SCHWAB.GAMMA: read("gamma"),
    SCHWAB.THETA: read("theta"),
    SCHWAB.VEGA: read("vega"),
    SCHWAB.RHO: read("rho"),
    SCHWAB.SECURITY_STATUS: constant("Normal"),
    SCHWAB.THEORETICAL_OPTION_VALUE: read("theoretical"),
    SCHWAB.UNDERLYING_PRICE: read("underlying_price"),
    SCHWAB.UV_EXPIRATION_TYPE: _fact("UV_EXPIRATION_TYPE"),
    SCHWAB.MARK: read("mark"),
    SCHWAB.QUOTE_TIME_MILLIS: read("quote_time_ms"),
    SCHWAB.TRADE_TIME_MILLIS: read("trade_time_ms"),
    SCHWAB.EXCHANGE_ID: constant("O"),
    SCHWAB.EXCHANGE_NAME: constant("OPR"),
    SCHWAB.LAST_TRADING_DAY: _fact("LAST_TRADING_DAY"),
    SCHWAB.SETTLEMENT_TYPE: lambda q: option_symbols.settlement_of(q.contract),
    SCHWAB.NET_PERCENT_CHANGE: percent_change("last"),
    SCHWAB.MARK_CHANGE: net_change("mark"),
    SCHWAB.MARK_CHANGE_PERCENT: percent_change("mark"),
    SCHWAB.IMPLIED_YIELD: constant(0.0),
    SCHWAB.IS_PENNY: constant(True),
    SCHWAB.OPTION_ROOT: read("contract.underlying"),
    SCHWAB.HIGH_PRICE_52_WEEK: lambda q: round(max(q.high, q.close) * 3, 2),
    SCHWAB.LOW_PRICE_52_WEEK: lambda q: round(min(q.low, q.close) / 3, 2),
    # Set for an index's options only; Schwab sends 0 for a stock's.
    SCHWAB.INDICATIVE_ASKING_PRICE: lambda q: q.ask if _indexed(q) else 0.0,
    SCHWAB.INDICATIVE_BID_PRICE: lambda q: q.bid if _indexed(q) else 0.0,
    SCHWAB.INDICATIVE_QUOTE_TIME: lambda q: q.quote_time_ms if _indexed(q) else 0,
    SCHWAB.EXERCISE_TYPE: constant("A"),
}.items()}


def header(q: Any, delayed: bool) -> dict[str, Any]:
    return {"key": q.symbol, "delayed": delayed, "assetMainType": "OPTION", "cusip": ""}


SERVICE = Service(NAME, SCHWAB, FIELDS, OptionUpdate, check, OptionBook, (OptionQuote,), "level_one_option_subs",
                  CONTRACTS, LevelOneServing(READERS, header), frozenset({EQUITY, INDEX}))
