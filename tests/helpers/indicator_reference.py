"""A slow, obvious reference for SMA9 and session VWAP, and markets to compare it on."""

from __future__ import annotations

import math
import random
from datetime import datetime, timedelta, timezone
from zoneinfo import ZoneInfo

from common.transport.messages import EquityTrade, IndicatorValue, MinuteBar

NEW_YORK = ZoneInfo("America/New_York")
MINUTE_MS = 60_000


def utc_ms(*parts: int) -> int:
    return int(datetime(*parts, tzinfo=timezone.utc).timestamp()) * 1000


def reference_anchor(ms: int) -> int:
    """The latest 09:30 New York at or before `ms`, by walking back day by day."""
    local = datetime.fromtimestamp(ms / 1000, NEW_YORK)
    day = local.date()
    while True:
        start = datetime(day.year, day.month, day.day, 9, 30, tzinfo=NEW_YORK).timestamp() * 1000
        if start <= ms:
            return int(start)
        day -= timedelta(days=1)


def reference(events: list) -> list[IndicatorValue]:
    """SMA9 and VWAP recomputed from whole histories, the slow obvious way."""
    closes: dict[str, list[float]] = {}
    last_bar: dict[str, int] = {}
    sessions: dict[str, tuple[int, list[tuple[float, int]]]] = {}
    values = []
    for event in events:
        if isinstance(event, MinuteBar):
            if event.start_ms > last_bar.get(event.symbol, -1):
                closes.setdefault(event.symbol, []).append(event.close)
                last_bar[event.symbol] = event.start_ms
            continue
        anchor = reference_anchor(event.trade_time_ms)
        session, trades = sessions.get(event.symbol, (anchor, []))
        if session != anchor:
            trades = []
        trades.append((event.price, event.size))
        sessions[event.symbol] = (anchor, trades)
        volume = sum(size for _, size in trades)
        vwap = sum(price * size for price, size in trades) / volume if volume else event.price
        history = closes.get(event.symbol, [])
        sma9 = (sum(history[-8:]) + event.price) / 9 if len(history) >= 8 else None
        values.append(
            IndicatorValue(event.symbol, event.trade_time_ms, event.day_volume, event.price, sma9, vwap, event.received_ns)
        )
    return values


def market(seed: int, windows: list[tuple[int, int]], symbols: tuple[str, ...], per_window: int) -> list:
    """Trades and completed bars in arrival order: each window is (start_ms, end_ms).

    Bars close each minute at that minute's last trade; some are resent later
    (replay duplicates) and some trades carry no volume.
    """
    rng = random.Random(seed)
    events: list = []
    prices = {symbol: 100.0 + 100 * i for i, symbol in enumerate(symbols)}
    day_volume = dict.fromkeys(symbols, 0)
    for start, end in windows:
        times = sorted(rng.randrange(start, end) for _ in range(per_window))
        minute_last: dict[str, tuple[int, float]] = {}
        sent_bars: list[MinuteBar] = []
        for ms in times:
            symbol = rng.choice(symbols)
            minute = ms - ms % MINUTE_MS
            previous = minute_last.get(symbol)
            if previous is not None and previous[0] < minute:
                bar = MinuteBar(symbol, previous[0], previous[1], previous[1], previous[1], previous[1], 1.0, 0, ms)
                events.append(bar)
                sent_bars.append(bar)
            if sent_bars and rng.random() < 0.02:
                events.append(rng.choice(sent_bars))
            prices[symbol] = round(prices[symbol] * (1 + rng.gauss(0, 0.001)), 2)
            size = 0 if rng.random() < 0.1 else rng.randint(1, 500)
            day_volume[symbol] += size
            events.append(EquityTrade(symbol, ms, prices[symbol], size, day_volume[symbol], size, None, None, ms))
            minute_last[symbol] = (minute, prices[symbol])
    return events


def assert_same(actual: list[IndicatorValue], expected: list[IndicatorValue]) -> None:
    assert len(actual) == len(expected)
    for got, want in zip(actual, expected):
        assert (got.symbol, got.trade_time_ms, got.day_volume, got.price, got.received_ns) == (
            want.symbol, want.trade_time_ms, want.day_volume, want.price, want.received_ns,
        )
        assert (got.sma9 is None) == (want.sma9 is None), (got, want)
        if want.sma9 is not None:
            assert math.isclose(got.sma9, want.sma9, rel_tol=1e-9), (got, want)
        assert math.isclose(got.vwap, want.vwap, rel_tol=1e-9), (got, want)
