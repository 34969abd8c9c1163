"""CHART_FUTURES: a future's one-minute bars, each whole ("All Sequence", as CHART_EQUITY).

Keys: as LEVELONE_FUTURES (`/ES`, `/ESZ26`). Records: `MinuteBar`, stored in
`equity_bars` under the key like a stock's bar. Schwab numbers no sequence in
a futures bar: the bar's is -1 (stored NULL).
"""

from __future__ import annotations

from typing import Any

import msgspec
from schwab.streaming import StreamClient

from common.feed.market_hours import CME
from common.feed.service import TICKERS, ChartServing, Service, renamed
from common.feed.services.chart_equity import bar_item, check_bar
from common.symbols import FUTURE, SPELLINGS
from common.transport.messages import MinuteBar

NAME = "CHART_FUTURES"
SCHWAB = StreamClient.ChartFuturesFields
#: A futures bar carries no sequence.
NO_SEQUENCE = -1

FIELDS = {
    "open": SCHWAB.OPEN_PRICE, "high": SCHWAB.HIGH_PRICE, "low": SCHWAB.LOW_PRICE, "close": SCHWAB.CLOSE_PRICE,
    "volume": SCHWAB.VOLUME, "start_ms": SCHWAB.CHART_TIME_MILLIS,
}


class FuturesChartItem(msgspec.Struct, rename=renamed(FIELDS), kw_only=True):
    """A CHART_FUTURES item: one complete minute bar."""

    key: str
    open: float
    high: float
    low: float
    close: float
    volume: float
    start_ms: int


def check(bar: FuturesChartItem, frame_ms: int) -> FuturesChartItem:
    check_bar(bar, frame_ms, SPELLINGS[FUTURE])
    return bar


class FuturesBarBook:
    """Nothing to merge: a chart item is always a complete bar."""

    def merge(self, bar: FuturesChartItem, frame_ms: int, received_ns: int) -> tuple[MinuteBar]:
        return (MinuteBar(bar.key, bar.start_ms, bar.open, bar.high, bar.low, bar.close, bar.volume, NO_SEQUENCE,
                          received_ns),)

    def reset(self) -> None:
        """No state to forget."""


def item(bar: Any) -> dict[str, Any]:
    """How the simulator writes a futures bar: no sequence, no day."""
    return bar_item(bar, SCHWAB)


SERVICE = Service(NAME, SCHWAB, FIELDS, FuturesChartItem, check, FuturesBarBook, (MinuteBar,), "chart_futures_subs",
                  TICKERS, ChartServing(item), frozenset({FUTURE}), CME)
