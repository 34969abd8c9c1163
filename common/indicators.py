"""SMA9 and session VWAP per symbol (pure: no sockets, no clock).

The indicator actor feeds every trade and bar here in the order ingest
received them; the numba kernels in `common.kernels` do the arithmetic.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from common import kernels
from common.messages import EquityTrade, IndicatorValue, MinuteBar, Record

NEW_YORK = ZoneInfo("America/New_York")
SESSION_OPEN = time(9, 30)


class RejectedRecord(ValueError):
    """A record the indicators cannot use; the message says why."""


def session_start_ms(day: date) -> int:
    """Epoch ms of 09:30 in New York on `day` (DST-correct)."""
    return int(datetime.combine(day, SESSION_OPEN, NEW_YORK).timestamp()) * 1000


class SessionClock:
    """Which regular session a time belongs to: the latest 09:30 ET at or before it.

    Trades before 09:30 belong to the previous day's anchor. The anchor and
    the next one are cached, so zoneinfo runs once per session, not per trade.
    """

    def __init__(self) -> None:
        self.start_ms = 0
        self.next_ms = 0

    def anchor(self, ms: int) -> int:
        if not self.start_ms <= ms < self.next_ms:
            local = datetime.fromtimestamp(ms / 1000, NEW_YORK)
            day = local.date() if local.time() >= SESSION_OPEN else local.date() - timedelta(days=1)
            self.start_ms = session_start_ms(day)
            self.next_ms = session_start_ms(day + timedelta(days=1))
        return self.start_ms


class IndicatorState:
    """One symbol's kernel state; see `common.kernels` for the layout."""

    __slots__ = ("closes", "ints", "sums")

    def __init__(self) -> None:
        self.closes, self.ints, self.sums = kernels.new_state()


@dataclass
class FrameResult:
    """What one frame of records produced: values per symbol, and what was rejected."""

    values: dict[str, list[IndicatorValue]] = field(default_factory=dict)
    rejected: list[tuple[Record, str]] = field(default_factory=list)


class IndicatorEngine:
    def __init__(self) -> None:
        kernels.warm_up()
        self.clock = SessionClock()
        self.states: dict[str, IndicatorState] = {}

    def _state(self, symbol: str) -> IndicatorState:
        state = self.states.get(symbol)
        if state is None:
            state = self.states[symbol] = IndicatorState()
        return state

    def on_bar(self, bar: MinuteBar) -> None:
        """Take a completed bar's close into SMA9; a bar not newer than the last is ignored."""
        if not math.isfinite(bar.close):
            raise RejectedRecord(f"bar close is {bar.close}")
        state = self._state(bar.symbol)
        kernels.push_close(state.closes, state.ints, bar.start_ms, bar.close)

    def on_trade(self, trade: EquityTrade) -> IndicatorValue:
        if not math.isfinite(trade.price):
            raise RejectedRecord(f"trade price is {trade.price}")
        if trade.size < 0:
            raise RejectedRecord(f"trade size is {trade.size}")
        state = self._state(trade.symbol)
        session = self.clock.anchor(trade.trade_time_ms)
        sma, vwap = kernels.on_trade(state.closes, state.ints, state.sums, session, trade.price, trade.size)
        if math.isnan(vwap):
            raise RejectedRecord("trade belongs to a session already closed")
        return IndicatorValue(
            symbol=trade.symbol,
            trade_time_ms=trade.trade_time_ms,
            day_volume=trade.day_volume,
            price=trade.price,
            sma9=None if math.isnan(sma) else sma,
            vwap=vwap,
            received_ns=trade.received_ns,
        )

    def on_records(self, records: Iterable[Record]) -> FrameResult:
        """Apply a frame's records in order; one bad record never spoils the rest."""
        result = FrameResult()
        for record in records:
            try:
                if isinstance(record, EquityTrade):
                    result.values.setdefault(record.symbol, []).append(self.on_trade(record))
                elif isinstance(record, MinuteBar):
                    self.on_bar(record)
                else:
                    raise RejectedRecord(f"{type(record).__name__} is neither a trade nor a bar")
            except RejectedRecord as rejected:
                result.rejected.append((record, str(rejected)))
        return result
