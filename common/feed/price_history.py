"""Schwab's minute price history (REST), decoded and checked where it enters: each good candle a `MinuteBar`.

The body of `GET /marketdata/v1/pricehistory` (schwab-py's
`get_price_history_every_minute`) is

    {"symbol": "SPY", "empty": false,
     "candles": [{"open": 417.1, "high": 417.4, "low": 417.0, "close": 417.25, "volume": 12345,
                  "datetime": 1764000000000}, ...]}

where `datetime` is the minute's start in epoch ms. A body of another shape
raises `PriceHistoryError` naming the field. A candle no market has, or one
outside the window asked for, is rejected with its reason (the rules of
CHART_EQUITY's bars at the edge: prices finite and above zero, the open and
close within the low and high, volume finite and not negative) and never
stored; the rest of its response is. Bars from history have no Schwab
sequence: `chart_sequence` -1, stored as NULL.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import msgspec

from common.transport.messages import MinuteBar

#: What a bar from history is: filled in after an outage by ingest, or loaded on demand (`make backfill`).
SOURCES = ("repaired", "backfill")
NO_SEQUENCE = -1


class PriceHistoryError(ValueError):
    """The body is not Schwab's price history shape."""


class Candle(msgspec.Struct, frozen=True):
    open: float
    high: float
    low: float
    close: float
    volume: float
    datetime: int


class PriceHistory(msgspec.Struct, frozen=True):
    candles: list[Candle]
    symbol: str = ""
    empty: bool = False


_history = msgspec.json.Decoder(PriceHistory)


def decode_history(body: bytes) -> PriceHistory:
    try:
        return _history.decode(body)
    except msgspec.DecodeError as error:
        raise PriceHistoryError(f"price history: {error}") from None


@dataclass(frozen=True)
class HistoryBars:
    """The candles of one response that can be stored, and those refused: (candle's time, reason)."""

    bars: list[MinuteBar]
    rejected: list[tuple[int, str]]


def history_bars(history: PriceHistory, symbol: str, start_ms: int, end_ms: int, source: str,
                 received_ns: int) -> HistoryBars:
    """`symbol`'s bars from `history` that start within start_ms..end_ms, each checked (the module's rules)."""
    if source not in SOURCES:
        raise ValueError(f"source must be one of {', '.join(SOURCES)}, not {source!r}")
    if history.symbol and history.symbol.upper() != symbol.upper():
        raise PriceHistoryError(f"price history is for {history.symbol!r}, not {symbol!r}")
    bars, rejected = [], []
    for candle in history.candles:
        reason = refusal(candle, start_ms, end_ms)
        if reason:
            rejected.append((candle.datetime, reason))
            continue
        bars.append(MinuteBar(symbol, candle.datetime, candle.open, candle.high, candle.low, candle.close,
                              candle.volume, NO_SEQUENCE, received_ns, source))
    return HistoryBars(bars, rejected)


def refusal(candle: Candle, start_ms: int, end_ms: int) -> str | None:
    """Why `candle` cannot be stored, or None."""
    if not start_ms <= candle.datetime <= end_ms:
        return "outside_window"
    prices = (candle.open, candle.high, candle.low, candle.close)
    if not all(math.isfinite(price) and price > 0 for price in prices):
        return "price_invalid"
    if not candle.low <= min(candle.open, candle.close) <= max(candle.open, candle.close) <= candle.high:
        return "bar_inconsistent"
    if not math.isfinite(candle.volume) or candle.volume < 0:
        return "size_invalid"
    return None
