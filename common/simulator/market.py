"""The simulator's market: a seeded random walk per symbol (pure, time passed in).

Every symbol draws from its own `random.Random(f"{seed}/{symbol}")`, so what
one symbol does never depends on which others are asked about or in which
order: the same seed and the same calls give the same prices, trades and bars.
Bars are built from the trades themselves, so a bar's OHLC and volume agree
exactly with the trades of its interval. Options are priced by Black-Scholes
from the underlying's current mid, at a volatility smile in moneyness.

It runs for every update the simulator sends, so the hot paths are written
for speed: quotes are copied without `dataclasses.replace`, a contract's
fixed facts are worked out once, and the implied volatility is found by
Newton's method from the model's own volatility (the mark is the model price
rounded to cents, so the answer is a hair away), falling back on
`common.analytics.greeks.implied_volatility`'s bisection only when Newton cannot
settle. None of that changes which random numbers are drawn, or in which
order: a seed gives the same market it did.
"""

from __future__ import annotations

import functools
import math
import random
from collections import deque
from collections.abc import Collection
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from typing import Any, TypeVar
from zoneinfo import ZoneInfo

from common.analytics.greeks import (
    MAX_VOL,
    MIN_VOL,
    MIN_YEARS,
    Greeks,
    black_scholes,
)
from common.feed import option_symbols
from common.feed.option_symbols import OptionContract
from common.feed.services.levelone_futures import product_of
from common.symbols import is_future, is_index

NEW_YORK = ZoneInfo("America/New_York")
RATE = 0.045
YEAR_MS = 365 * 86_400_000
TRADE_SHARE = 0.45
OPTION_TRADE_SHARE = 0.2
STRIKES_EACH_SIDE = 20
#: An index's chain: SPX lists hundreds of strikes an expiry, and Schwab refuses to send it whole.
INDEX_STRIKES_EACH_SIDE = 60
BARS_KEPT = 240
#: Prices move this many times faster than their volatility says, enough to
#: see within a minute, and revert to where they started with this half-life.
SPEEDUP = 10.0
HALF_LIFE_MS = 30 * 60_000
#: Rough prices so familiar symbols look familiar; others start at random.
KNOWN = {
    "SPY": (580.0, "SPDR S&P 500 ETF", "78462F103", 0.14),
    "QQQ": (500.0, "Invesco QQQ Trust", "46090E103", 0.18),
    "IWM": (220.0, "iShares Russell 2000 ETF", "464287655", 0.22),
    "AAPL": (230.0, "Apple Inc", "037833100", 0.25),
    "MSFT": (420.0, "Microsoft Corp", "594918104", 0.24),
    "GOOG": (170.0, "Alphabet Inc. C", "02079K107", 0.28),
    "NVDA": (130.0, "NVIDIA Corp", "67066G104", 0.45),
    "TSLA": (250.0, "Tesla Inc", "88160R101", 0.55),
    "$SPX": (6000.0, "S&P 500 INDEX", "", 0.14),
    "$VIX": (16.0, "CBOE Volatility Index", "", 0.9),
    "$NDX": (21000.0, "NASDAQ 100 INDEX", "", 0.18),
    "$RUT": (2300.0, "Russell 2000 Index", "", 0.22),
    "/ES": (6020.0, "E-mini S&P 500 Index Futures", "", 0.14),
    "/MES": (6020.0, "Micro E-mini S&P 500 Index Futures", "", 0.14),
    "/NQ": (21100.0, "E-mini Nasdaq-100 Index Futures", "", 0.18),
}
#: A future's price moves in quarter points (the E-minis').
FUTURE_TICK = 0.25


def round_price(price: float) -> float:
    """Cents, or four decimals under $1, as equities are quoted."""
    return round(price, 2) if price >= 1 else round(price, 4)


@functools.lru_cache(maxsize=16)  # one clock reading prices every contract of a tick
def new_york_date(now_ms: int) -> date:
    return datetime.fromtimestamp(now_ms / 1000, NEW_YORK).date()


def expiry_ms(expiration: date) -> int:
    """Options stop trading at 16:00 New York time on their expiration date."""
    return int(datetime.combine(expiration, time(16), NEW_YORK).timestamp() * 1000)


def expirations(today: date) -> list[date]:
    """Today when a weekday (0DTE), the next four weekdays, then three more Fridays."""
    days = [today] if today.weekday() < 5 else []
    day = today
    while len(days) < 5:
        day += timedelta(days=1)
        if day.weekday() < 5:
            days.append(day)
    fridays = []
    while len(fridays) < 3:
        day += timedelta(days=1)
        if day.weekday() == 4:
            fridays.append(day)
    return days + fridays


def strike_increment(spot: float) -> float:
    return 0.5 if spot < 25 else 1.0 if spot < 1000 else 5.0


def strikes(spot: float, each_side: int = STRIKES_EACH_SIDE) -> list[float]:
    step = strike_increment(spot)
    atm = round(spot / step) * step
    return [atm + i * step for i in range(-each_side, each_side + 1) if atm + i * step > 0]


_Frozen = TypeVar("_Frozen")


def _evolve(value: _Frozen, changes: dict[str, Any]) -> _Frozen:
    """`dataclasses.replace(value, **changes)` for the quotes, at a fraction of its cost: no checks, no `__init__`."""
    copy = object.__new__(type(value))
    fields = copy.__dict__
    fields.update(value.__dict__)
    fields.update(changes)
    return copy


@dataclass(frozen=True)
class SimulatedEquity:
    """One symbol of the simulated market at one moment: every field a LEVELONE_EQUITIES item can carry."""

    symbol: str
    description: str
    cusip: str
    bid: float
    ask: float
    bid_size: int
    ask_size: int
    last: float
    last_size: int
    total_volume: int
    open: float
    high: float
    low: float
    close: float
    mark: float
    quote_time_ms: int
    trade_time_ms: int


@dataclass(frozen=True)
class Trade:
    symbol: str
    time_ms: int
    price: float
    size: int
    day_volume: int


@dataclass(frozen=True)
class Event:
    """One step of a symbol: always a new quote, and the trade when there was one."""

    quote: SimulatedEquity
    trade: Trade | None


@dataclass(frozen=True)
class Bar:
    symbol: str
    sequence: int
    start_ms: int
    open: float
    high: float
    low: float
    close: float
    volume: int


@dataclass(frozen=True)
class SimulatedOption:
    """One contract of the simulated market at one moment: every field a LEVELONE_OPTIONS item can carry."""

    symbol: str
    contract: OptionContract
    bid: float
    ask: float
    bid_size: int
    ask_size: int
    last: float
    last_size: int
    mark: float
    open: float
    high: float
    low: float
    close: float
    total_volume: int
    open_interest: int
    volatility: float
    delta: float
    gamma: float
    theta: float
    vega: float
    rho: float
    theoretical: float
    underlying_price: float
    days_to_expiration: int
    expiration_ms: int
    quote_time_ms: int
    trade_time_ms: int


def _implied_volatility(price: float, spot: float, strike: float, years: float, is_call: bool,
                        guess: float) -> float | None:
    """What `common.analytics.greeks.implied_volatility` finds (at RATE), in a handful of prices instead of thirty-odd.

    The same bounds (None when `price` is outside what volatilities MIN_VOL
    to MAX_VOL give) and the same root, found by Newton's method from
    `guess`, the volatility the price was modelled at and so a hair from the
    answer, kept inside a bracket that bisects whenever Newton would leave it
    (deep in or out of the money, or at expiry, where vega vanishes).
    """
    if price <= 0:
        return None
    t = max(years, MIN_YEARS)
    root_t = math.sqrt(t)
    discounted = strike * math.exp(-RATE * t)
    drift = math.log(spot / strike) + RATE * t

    def excess(vol: float) -> tuple[float, float]:
        """(Black-Scholes price at `vol` less `price`, vega per unit of volatility)."""
        d1 = (drift + 0.5 * vol * vol * t) / (vol * root_t)
        d2 = d1 - vol * root_t
        if is_call:
            model = spot * _cdf(d1) - discounted * _cdf(d2)
        else:
            model = discounted * _cdf(-d2) - spot * _cdf(-d1)
        return model - price, spot * math.exp(-0.5 * d1 * d1) * root_t / _ROOT_TWO_PI

    low, high = MIN_VOL, MAX_VOL
    if excess(low)[0] > 0 or excess(high)[0] < 0:
        return None
    vol = min(max(guess, low), high)
    for _ in range(100):
        error, vega = excess(vol)
        if error < 0:
            low = vol
        else:
            high = vol
        following = vol - error / vega if vega > 0 else low - 1.0
        if not low < following < high:
            following = 0.5 * (low + high)
        if abs(following - vol) < 1e-12 or high - low < 1e-12:
            return following
        vol = following
    return vol


_ROOT_TWO_PI = math.sqrt(2.0 * math.pi)
_ROOT_TWO = math.sqrt(2.0)


def _cdf(x: float) -> float:
    return 0.5 * math.erfc(-x / _ROOT_TWO)


def _smile(base_vol: float, spot: float, strike: float) -> float:
    """Volatility by moneyness: a smile with a put skew."""
    moneyness = math.log(strike / spot)
    return base_vol * (1 + 2.0 * moneyness * moneyness - 0.5 * moneyness)


class _Equity:
    def __init__(self, symbol: str, seed: int, now_ms: int, bar_ms: int):
        self.rng = rng = random.Random(f"{seed}/{symbol}")
        #: An index is computed, not traded: no book, no volume, its level moving every step.
        self.index = is_index(symbol)
        self.future = is_future(symbol)
        price, name, cusip, vol = KNOWN.get(product_of(symbol) if self.future else symbol,
                                            (0.0, f"{symbol} (simulated)", "", 0.0))
        self.mid = price * (1 + rng.gauss(0, 0.005)) if price else rng.uniform(20, 400)
        self.vol = vol or rng.uniform(0.2, 0.5)
        self.anchor = math.log(self.mid)
        self.bar_ms = bar_ms
        last = round_price(self.mid)
        day_open = round_price(self.mid * (1 + rng.gauss(0, 0.004)))
        self.quote = SimulatedEquity(
            symbol=symbol,
            description=name,
            cusip=cusip or f"{rng.randrange(10**8):08d}9",
            **self._book(now_ms),
            last=last,
            last_size=0 if self.index else 100,
            total_volume=0 if self.index else rng.randrange(1_000, 50_000) * 100,
            open=day_open,
            high=round_price(max(day_open, last) * (1 + abs(rng.gauss(0, 0.003)))),
            low=round_price(min(day_open, last) * (1 - abs(rng.gauss(0, 0.003)))),
            close=round_price(self.mid * (1 + rng.gauss(0, 0.01))),
            trade_time_ms=now_ms - rng.randrange(1, 5_000),
        )
        self.bar: list[float] | None = None  # [start_ms, open, high, low, close, volume]
        self.bars: deque[Bar] = deque(maxlen=BARS_KEPT)
        self.sequence = 0

    def _book(self, now_ms: int) -> dict:
        """A fresh top of book around the mid: 1 to 3 ticks wide (an index's is empty: Schwab sends zeros)."""
        if self.index:
            return {"bid": 0.0, "ask": 0.0, "bid_size": 0, "ask_size": 0, "mark": round_price(self.mid),
                    "quote_time_ms": now_ms}
        tick = FUTURE_TICK if self.future else 0.01 if self.mid >= 1 else 0.0001
        spread = tick * self.rng.choice((1, 1, 1, 2, 2, 3))
        bid = round_price(math.floor((self.mid - spread / 2) / tick) * tick)
        ask = round_price(bid + spread)
        return {
            "bid": bid,
            "ask": ask,
            "bid_size": self.rng.randint(1, 30),
            "ask_size": self.rng.randint(1, 30),
            "mark": round_price((bid + ask) / 2),
            "quote_time_ms": now_ms,
        }

    def _walk(self, dt_ms: int) -> None:
        """Mean-reverting (Ornstein-Uhlenbeck) log price: volatile but never far from its start."""
        x = math.log(self.mid)
        pull = 1 - 0.5 ** (dt_ms / HALF_LIFE_MS)
        noise = self.vol * SPEEDUP * math.sqrt(dt_ms / YEAR_MS) * self.rng.gauss(0, 1)
        self.mid = math.exp(x - pull * (x - self.anchor) + noise)

    def advance(self, now_ms: int) -> bool:
        """One step: a new quote, and a trade about half the time (True when there was one)."""
        quote_time_ms = self.quote.quote_time_ms
        now_ms = max(now_ms, quote_time_ms)
        if self.bar is not None:
            self.close_bar(now_ms)
        self._walk(max(now_ms - quote_time_ms, 1))
        rng = self.rng
        changes = self._book(now_ms)
        if self.index:
            level, q = changes["mark"], self.quote
            changes.update(last=level, trade_time_ms=now_ms, high=max(q.high, level), low=min(q.low, level))
            self.quote = _evolve(q, changes)
            self._add_to_bar(now_ms, level, 0)
            return False
        if rng.random() >= TRADE_SHARE:
            self.quote = _evolve(self.quote, changes)
            return False
        price = rng.choice((changes["bid"], changes["ask"], changes["mark"]))
        if rng.random() < 0.7:
            size = rng.choice((100, 100, 100, 200, 300, 500, 1000))
        else:
            size = rng.randint(1, 99)
        q = self.quote
        changes.update(last=price, last_size=size, total_volume=q.total_volume + size, trade_time_ms=now_ms,
                       high=max(q.high, price), low=min(q.low, price))
        self.quote = _evolve(q, changes)
        self._add_to_bar(now_ms, price, size)
        return True

    def step(self, now_ms: int) -> Event:
        if not self.advance(now_ms):
            return Event(self.quote, None)
        q = self.quote
        return Event(q, Trade(q.symbol, q.trade_time_ms, q.last, q.last_size, q.total_volume))

    def _add_to_bar(self, now_ms: int, price: float, size: int) -> None:
        if self.bar is None:
            self.bar = [now_ms // self.bar_ms * self.bar_ms, price, price, price, price, 0]
        bar = self.bar
        bar[2], bar[3], bar[4], bar[5] = max(bar[2], price), min(bar[3], price), price, bar[5] + size

    def close_bar(self, now_ms: int) -> None:
        """The open bar is complete once its interval has passed."""
        if self.bar is not None and now_ms >= self.bar[0] + self.bar_ms:
            start, o, h, low, c, v = self.bar
            self.bars.append(Bar(self.quote.symbol, self.sequence, int(start), o, h, low, c, int(v)))
            self.sequence += 1
            self.bar = None


class _Option:
    """A contract's own state; its prices come from the underlying at each read."""

    def __init__(self, symbol: str, contract: OptionContract, seed: int, theo: float, now_ms: int):
        self.rng = rng = random.Random(f"{seed}/{symbol}")
        self.symbol = symbol
        self.contract = contract
        self.expires_ms = expiry_ms(contract.expiration)
        self.total_volume = rng.randrange(0, 5_000)
        self.open_interest = rng.randrange(0, 20_000)
        self.last = round(max(theo, 0.01), 2)
        self.last_size = rng.randint(1, 10)
        self.trade_time_ms = now_ms - rng.randrange(1_000, 3_600_000)
        self.open = self.high = self.low = self.last
        self.close = round(self.last * (1 + rng.gauss(0, 0.05)), 2)
        self.bid_size, self.ask_size = rng.randint(1, 50), rng.randint(1, 50)



class Market:
    """Prices for any symbol asked about; `now_ms` is always the caller's clock."""

    def __init__(self, seed: int, bar_ms: int = 60_000):
        self.seed = seed
        self.bar_ms = bar_ms
        self._equities: dict[str, _Equity] = {}
        self._options: dict[str, _Option] = {}

    def _equity(self, symbol: str, now_ms: int) -> _Equity:
        if symbol not in self._equities:
            self._equities[symbol] = _Equity(symbol, self.seed, now_ms, self.bar_ms)
        return self._equities[symbol]

    def quote(self, symbol: str, now_ms: int) -> SimulatedEquity:
        return self._equity(symbol, now_ms).quote

    def step(self, symbol: str, now_ms: int) -> Event:
        """Move `symbol` one step: a new quote, and a trade about half the time."""
        return self._equity(symbol, now_ms).step(now_ms)

    def advance(self, symbol: str, now_ms: int) -> None:
        """`step`, for a caller that reads the new quote later: no Event is made."""
        self._equity(symbol, now_ms).advance(now_ms)

    def bars_after(self, symbol: str, after_start_ms: int, now_ms: int) -> list[Bar]:
        """Completed bars of `symbol` that started after `after_start_ms`, oldest first."""
        equity = self._equity(symbol, now_ms)
        equity.close_bar(now_ms)
        newer = []
        for bar in reversed(equity.bars):  # asked every tick, and mostly nothing is new: look from the newest
            if bar.start_ms <= after_start_ms:
                break
            newer.append(bar)
        newer.reverse()
        return newer

    def bars_between(self, symbol: str, start_ms: int, end_ms: int, now_ms: int) -> list[Bar]:
        """Completed bars of `symbol` that started within start_ms..end_ms (of the last BARS_KEPT), oldest first."""
        equity = self._equity(symbol, now_ms)
        equity.close_bar(now_ms)
        return [bar for bar in equity.bars if start_ms <= bar.start_ms <= end_ms]

    def _option(self, symbol: str, now_ms: int) -> _Option:
        option = self._options.get(symbol)
        if option is None:
            contract = option_symbols.parse(symbol)
            theo = self._model(contract, expiry_ms(contract.expiration), now_ms)[1].price
            option = self._options[symbol] = _Option(symbol, contract, self.seed, theo, now_ms)
        return option

    def forget_expired_options(self, now_ms: int, streamed: Collection[str]) -> int:
        """Forget the contracts that expired before today and are not `streamed`; how many.

        Each day lists a new expiration for every underlying asked about, and
        a contract's state is about 4 KB: kept, they would pile up for as long
        as the simulator runs. No chain lists them again (`expirations`
        starts from today), so no client sees the difference.
        """
        today = new_york_date(now_ms)
        expired = [symbol for symbol, option in self._options.items()
                   if option.contract.expiration < today and symbol not in streamed]
        for symbol in expired:
            del self._options[symbol]
        return len(expired)

    def _model(self, contract: OptionContract, expires_ms: int, now_ms: int) -> tuple[float, Greeks, float]:
        """(spot, Black-Scholes at the contract's smile volatility, that volatility)."""
        equity = self._equity(option_symbols.underlying_of(contract), now_ms)
        vol = _smile(equity.vol, equity.mid, contract.strike)
        years = (expires_ms - now_ms) / YEAR_MS
        return equity.mid, black_scholes(equity.mid, contract.strike, years, RATE, vol, contract.put_call == "C"), vol

    def option_quote(self, symbol: str, now_ms: int) -> SimulatedOption:
        """The contract's quote now, from the underlying's current mid; reading changes nothing."""
        return self._price(self._option(symbol, now_ms), now_ms)

    def step_option(self, symbol: str, now_ms: int) -> SimulatedOption:
        """Reprice the contract with new sizes; sometimes it trades."""
        option = self._option(symbol, now_ms)
        rng = option.rng
        option.bid_size, option.ask_size = rng.randint(1, 50), rng.randint(1, 50)
        quote = self._price(option, now_ms)
        if rng.random() >= OPTION_TRADE_SHARE:
            return quote
        price = rng.choice((quote.bid, quote.ask, quote.mark)) or quote.ask
        option.last, option.last_size, option.trade_time_ms = price, rng.randint(1, 20), now_ms
        option.total_volume += option.last_size
        option.high, option.low = max(option.high, price), min(option.low, price)
        # The same model at the same moment: only what the trade changed differs from `quote`.
        return _evolve(quote, {"last": price, "last_size": option.last_size, "total_volume": option.total_volume,
                               "high": option.high, "low": option.low, "trade_time_ms": now_ms})

    def _price(self, option: _Option, now_ms: int) -> SimulatedOption:
        contract = option.contract
        expires = option.expires_ms
        spot, model, vol = self._model(contract, expires, now_ms)
        theo = max(model.price, 0.0)
        half = max(0.005, 0.01 * theo)
        bid = round(max(0.0, math.floor((theo - half) * 100) / 100), 2)
        ask = round(max(bid + 0.01, math.ceil((theo + half) * 100) / 100), 2)
        mark = round((bid + ask) / 2, 3)
        years = (expires - now_ms) / YEAR_MS
        implied = _implied_volatility(mark, spot, contract.strike, years, contract.put_call == "C", vol) or vol
        return SimulatedOption(
            symbol=option.symbol,
            contract=contract,
            bid=bid,
            ask=ask,
            bid_size=option.bid_size,
            ask_size=option.ask_size,
            last=option.last,
            last_size=option.last_size,
            mark=mark,
            open=option.open,
            high=option.high,
            low=option.low,
            close=option.close,
            total_volume=option.total_volume,
            open_interest=option.open_interest,
            volatility=round(implied * 100, 8),
            delta=round(model.delta, 8),
            gamma=round(model.gamma, 8),
            theta=round(model.theta, 8),
            vega=round(model.vega, 8),
            rho=round(model.rho, 8),
            theoretical=round(theo, 8),
            underlying_price=round_price(spot),
            days_to_expiration=(contract.expiration - new_york_date(now_ms)).days,
            expiration_ms=expires,
            quote_time_ms=now_ms,
            trade_time_ms=option.trade_time_ms,
        )

    def chain(self, underlying: str, now_ms: int) -> list[SimulatedOption]:
        """Every listed contract of `underlying`: `expirations` x `strikes` around the spot, calls and puts. An
        index lists its PM-settled root (SPXW) on every expiry and its AM-settled one (SPX) on the monthly third
        Fridays among them, each with INDEX_STRIKES_EACH_SIDE strikes: a chain too big to read unbounded."""
        spot = self._equity(underlying, now_ms).mid
        roots = option_symbols.roots_of(underlying)
        listed = strikes(spot, INDEX_STRIKES_EACH_SIDE if is_index(underlying) else STRIKES_EACH_SIDE)
        return [
            self.option_quote(option_symbols.build(root, expiration, put_call, strike), now_ms)
            for expiration in expirations(new_york_date(now_ms))
            for root in roots if root == roots[0] or 15 <= expiration.day <= 21 and expiration.weekday() == 4
            for strike in listed
            for put_call in ("C", "P")
        ]
