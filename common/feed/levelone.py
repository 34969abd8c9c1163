"""Checked Schwab updates (`common/feed/edge.py`) → complete bus records, merged per key (pure).

Level-one services send a full snapshot of a key first and then only the
fields that changed, so every record is built from the key's merged state,
kept typed and updated in place, never from one update alone. Reset the
books whenever the connection is replaced: a new connection starts from
fresh snapshots, and no stale field may leak into a record.

A trade is an equity update whose TOTAL_VOLUME grew; its size is the growth,
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

What an update leaves out is completed only where that is honest: a trade
without a trade time of its own, or a quote without a quote time, takes the
frame's timestamp; an option's contract type, strike, expiry and underlying
come from its key (the OSI symbol carries all four) until Schwab sends them.
A trade before any last price is known cannot be completed: `no_price`;
the baseline then stays where it was, so the shares wait for the first
priced update, which takes them all. A last price of 0 (the edge's None) is
Schwab having no price to give, not a trade at none: the last known price
stays, and the next growth is priced by it.

A time no calendar holds (past year 9999) cannot be given a New York day:
`NewYorkDay` refuses it as `time_out_of_range`, an Incomplete like the others,
never an error that escapes (the edge refuses such frames before; this is the
merge's own guard).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

from msgspec import UNSET

from common.feed import option_symbols
from common.feed.edge import ChartItem, EquityUpdate, OptionUpdate
from common.transport.messages import EquityQuote, EquityTrade, MinuteBar, OptionQuote

NEW_YORK = ZoneInfo("America/New_York")
#: More shares than one update of one symbol carries: Schwab sends an update a second or so, and the largest
#: prints (closing crosses on index-inclusion days) are a few hundred million shares.
MAX_VOLUME_JUMP = 1_000_000_000


class Incomplete(ValueError):
    """An update that cannot become an honest record; `reason` is the name it is counted by."""

    def __init__(self, reason: str, detail: str):
        super().__init__(detail)
        self.reason = reason


class NewYorkDay:
    """The New York calendar day of an epoch-ms time, zoneinfo consulted once per day, not per update."""

    def __init__(self) -> None:
        self.start_ms = self.end_ms = 0
        self.day = 0

    def __call__(self, ms: int) -> int:
        """`ms`'s day, as a proleptic ordinal; Incomplete (`time_out_of_range`) for a time no calendar holds."""
        if not self.start_ms <= ms < self.end_ms:
            try:
                local = datetime.fromtimestamp(ms / 1000, NEW_YORK).date()
                midnight = datetime(local.year, local.month, local.day, tzinfo=NEW_YORK)
                start_ms = int(midnight.timestamp() * 1000)
                end_ms = int((midnight + timedelta(days=1)).timestamp() * 1000)
            except (OverflowError, OSError, ValueError):
                raise Incomplete("time_out_of_range", f"time {ms} ms after 1970 is in no calendar") from None
            self.start_ms, self.end_ms, self.day = start_ms, end_ms, local.toordinal()
        return self.day


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


class EquityBook:
    """Every equity key's merged state on one connection."""

    def __init__(self) -> None:
        self.states: dict[str, EquityState] = {}
        self.day = NewYorkDay()

    def merge(self, update: EquityUpdate, frame_ms: int,
              received_ns: int) -> tuple[EquityTrade | None, EquityQuote | None]:
        """The trade and/or quote one update stands for; Incomplete when a trade cannot be completed."""
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
        quote = None
        if (update.bid is not UNSET or update.ask is not UNSET or update.bid_size is not UNSET
                or update.ask_size is not UNSET):
            quote = EquityQuote(update.key, frame_ms if update.quote_time is UNSET else update.quote_time, state.bid,
                                state.ask, state.bid_size, state.ask_size, received_ns)
        if update.total_volume is UNSET:
            return None, quote
        volume, day = update.total_volume, self.day(frame_ms)
        new_day = day != state.volume_day
        if first or before is None or volume == before:
            state.total_volume, state.volume_day = volume, day
            return None, quote
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
        )
        return trade, quote

    def reset(self) -> None:
        self.states.clear()


class OptionBook:
    """Every option contract's merged state on one connection."""

    def __init__(self) -> None:
        self.states: dict[str, OptionState] = {}

    def merge(self, update: OptionUpdate, frame_ms: int, received_ns: int) -> OptionQuote:
        state = self.states.get(update.key)
        if state is None:
            contract = option_symbols.parse(update.key)  # the edge checked it is one
            state = self.states[update.key] = OptionState(contract.underlying, contract.put_call, contract.strike,
                                                          contract.expiration)
        for name in _OPTION_FIELDS:
            value = getattr(update, name)
            if value is not UNSET:
                setattr(state, name, value)
        if update.expiration_year is not UNSET and update.expiration_month is not UNSET \
                and update.expiration_day is not UNSET:
            state.expiration = date(update.expiration_year, update.expiration_month, update.expiration_day)
        return OptionQuote(
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
        )

    def reset(self) -> None:
        self.states.clear()


#: The option fields an update may carry that the state takes as they are (the expiry comes in three parts).
_OPTION_FIELDS = ("underlying", "contract_type", "strike", "bid", "ask", "last", "mark", "total_volume",
                  "open_interest", "volatility", "delta", "gamma", "theta", "vega", "rho", "underlying_price")


def bar_record(bar: ChartItem, received_ns: int) -> MinuteBar:
    """A CHART_EQUITY item is always complete, never a delta."""
    return MinuteBar(bar.key, bar.start_ms, bar.open, bar.high, bar.low, bar.close, bar.volume, bar.sequence,
                     received_ns)
