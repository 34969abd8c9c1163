"""CHART_EQUITY: a ticker's one-minute bars, each whole ("All Sequence": never conflated, never a delta).

Keys: a ticker. Records: `MinuteBar`, one per item. A bar's high is not below
its low, nor its open or close outside them; its volume is a count.
"""

from __future__ import annotations

import math
import re
from enum import Enum
from typing import Any

import msgspec
from schwab.streaming import StreamClient

from common.feed import checks
from common.feed.checks import VOLUME_CEILING, Invalid
from common.feed.service import TICKERS, ChartServing, Service, renamed, wire
from common.symbols import EQUITY, INDEX
from common.transport.messages import MinuteBar

NAME = "CHART_EQUITY"
SCHWAB = StreamClient.ChartEquityFields
_DAY_MS = 86_400_000

FIELDS = {
    "sequence": SCHWAB.SEQUENCE, "open": SCHWAB.OPEN_PRICE, "high": SCHWAB.HIGH_PRICE, "low": SCHWAB.LOW_PRICE,
    "close": SCHWAB.CLOSE_PRICE, "volume": SCHWAB.VOLUME, "start_ms": SCHWAB.CHART_TIME_MILLIS,
}


class ChartItem(msgspec.Struct, rename=renamed(FIELDS), kw_only=True):
    """A CHART_EQUITY item: one complete minute bar."""

    key: str
    open: float
    high: float
    low: float
    close: float
    volume: float
    start_ms: int
    sequence: int = 0


def check(bar: ChartItem, frame_ms: int) -> ChartItem:
    check_bar(bar, frame_ms)
    checks.counts(bar, ("sequence",))
    return bar


def check_bar(bar: Any, frame_ms: int, key: re.Pattern[str] = checks.SYMBOL_KEY) -> None:
    """What every chart service's bar must be: a plausible key, prices, high above low, a count of volume, a time
    near its frame's."""
    checks.key(bar.key, key)
    for name in ("open", "high", "low", "close"):
        checks.price(getattr(bar, name), name)
    if not bar.low <= min(bar.open, bar.close) <= max(bar.open, bar.close) <= bar.high:
        raise Invalid("bar_inconsistent", f"open {bar.open}, high {bar.high}, low {bar.low}, close {bar.close}")
    if not math.isfinite(bar.volume) or bar.volume < 0:
        raise Invalid("size_invalid", f"volume is {bar.volume}")
    if bar.volume > VOLUME_CEILING:
        raise Invalid("size_implausible", f"volume is {bar.volume:g}, above {VOLUME_CEILING:g}")
    checks.times(bar, ("start_ms",), frame_ms)


class BarBook:
    """Nothing to merge: a chart item is always a complete bar."""

    def merge(self, bar: ChartItem, frame_ms: int, received_ns: int) -> tuple[MinuteBar]:
        return (MinuteBar(bar.key, bar.start_ms, bar.open, bar.high, bar.low, bar.close, bar.volume, bar.sequence,
                          received_ns),)

    def reset(self) -> None:
        """No state to forget."""


def bar_item(bar: Any, fields: type[Enum]) -> dict[str, Any]:
    """A bar as Schwab writes it in a chart service whose fields are `fields`: the prices as written, the volume
    always a double."""
    number = {field.name: str(field.value) for field in fields}
    return {"seq": 0, "key": bar.symbol, number["OPEN_PRICE"]: wire(bar.open), number["HIGH_PRICE"]: wire(bar.high),
            number["LOW_PRICE"]: wire(bar.low), number["CLOSE_PRICE"]: wire(bar.close),
            number["VOLUME"]: float(bar.volume), number["CHART_TIME_MILLIS"]: bar.start_ms}


def item(bar: Any) -> dict[str, Any]:
    """How the simulator writes a bar: with its sequence and day."""
    return {**bar_item(bar, SCHWAB), str(SCHWAB.SEQUENCE.value): bar.sequence,
            str(SCHWAB.CHART_DAY.value): bar.start_ms // _DAY_MS}


SERVICE = Service(NAME, SCHWAB, FIELDS, ChartItem, check, BarBook, (MinuteBar,), "chart_equity_subs", TICKERS,
                  ChartServing(item), frozenset({EQUITY, INDEX}))
