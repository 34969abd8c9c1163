"""IndicatorEngine against a plain-Python reference, across sessions and DST.

`reference` and `market` are shared with the actor's integration test.
"""

import math
import random
from datetime import datetime

import pytest

from common.analytics.indicators import (
    SMA_BARS,
    IndicatorEngine,
    SessionClock,
    SymbolIndicators,
)
from common.feed.market_hours import NEW_YORK
from common.transport.messages import EquityQuote, EquityTrade, IndexLevel, IndicatorValue, MinuteBar
from tests.helpers.indicator_reference import (
    MINUTE_MS,
    assert_same,
    market,
    reference,
    reference_anchor,
    utc_ms,
)

# Friday before the March 2024 DST change (EST), the change itself on Sunday
# 2024-03-10 02:00, and Monday after (EDT); each window crosses 09:30 or 02:00.
WINDOWS = [
    (utc_ms(2024, 3, 8, 13, 50), utc_ms(2024, 3, 8, 15, 10)),   # Fri 08:50-10:10 EST
    (utc_ms(2024, 3, 10, 6, 30), utc_ms(2024, 3, 10, 7, 30)),   # Sun 01:30 EST-03:30 EDT
    (utc_ms(2024, 3, 11, 12, 50), utc_ms(2024, 3, 11, 14, 10)),  # Mon 08:50-10:10 EDT
    (utc_ms(2024, 11, 4, 14, 0), utc_ms(2024, 11, 4, 15, 0)),    # Mon after fall-back, 09:00-10:00 EST
]


@pytest.mark.parametrize(
    ("at", "anchor"),
    [
        (utc_ms(2024, 3, 8, 14, 30), utc_ms(2024, 3, 8, 14, 30)),  # Fri 09:30 EST exactly
        (utc_ms(2024, 3, 8, 14, 29), utc_ms(2024, 3, 7, 14, 30)),  # Fri 09:29 EST: Thursday's session
        (utc_ms(2024, 3, 11, 13, 29), utc_ms(2024, 3, 10, 13, 30)),  # Mon 09:29 EDT: Sunday 09:30 EDT
        (utc_ms(2024, 3, 11, 13, 30), utc_ms(2024, 3, 11, 13, 30)),  # Mon 09:30 EDT
        (utc_ms(2024, 3, 10, 7, 0), utc_ms(2024, 3, 9, 14, 30)),  # Sun 03:00 EDT: Saturday 09:30 EST
        (utc_ms(2024, 11, 3, 14, 29), utc_ms(2024, 11, 2, 13, 30)),  # Sun 09:29 EST: Saturday 09:30 EDT
    ],
)
def test_session_anchor_is_the_latest_0930_new_york(at, anchor):
    clock = SessionClock()
    assert clock.anchor(at) == anchor
    assert clock.anchor(at) == anchor, "the cached range gives the same answer"


def test_session_clock_agrees_with_reference_minute_by_minute_across_dst():
    clock = SessionClock()
    for ms in range(utc_ms(2024, 3, 7, 0, 0), utc_ms(2024, 3, 13, 0, 0), MINUTE_MS):
        assert clock.anchor(ms) == reference_anchor(ms)
    for ms in range(utc_ms(2024, 11, 1, 0, 0), utc_ms(2024, 11, 6, 0, 0), 7 * MINUTE_MS):
        assert clock.anchor(ms) == reference_anchor(ms)


def test_engine_matches_reference_over_thousands_of_trades():
    events = market(seed=11, windows=WINDOWS, symbols=("SPY", "QQQ"), per_window=1500)
    engine = IndicatorEngine()
    actual = []
    for event in events:
        if isinstance(event, MinuteBar):
            engine.on_bar(event)
        else:
            actual.append(engine.on_trade(event))
    expected = reference(events)
    assert_same(actual, expected)
    assert sum(v.sma9 is not None for v in expected) > 1000, "the test must exercise a full ring"
    assert len({reference_anchor(e.trade_time_ms) for e in events if isinstance(e, EquityTrade)}) >= 5


def test_size_zero_trade_moves_price_but_not_vwap():
    engine = IndicatorEngine()
    t = utc_ms(2024, 3, 11, 14, 0)
    assert engine.on_trade(EquityTrade("SPY", t, 10.0, 0, 0, 0, None, None, 1)).vwap == 10.0, "no volume yet: the price"
    assert engine.on_trade(EquityTrade("SPY", t + 1, 11.0, 100, 100, 100, None, None, 2)).vwap == 11.0
    zero = engine.on_trade(EquityTrade("SPY", t + 2, 50.0, 0, 100, 0, None, None, 3))
    assert (zero.price, zero.vwap) == (50.0, 11.0)


def test_duplicate_bars_are_ignored_and_sma_needs_eight():
    engine = IndicatorEngine()
    start = utc_ms(2024, 3, 11, 14, 0)
    for i in range(8):
        bar = MinuteBar("SPY", start + i * MINUTE_MS, 0, 0, 0, float(i + 1), 1.0, i, 0)
        engine.on_bar(bar)
        engine.on_bar(bar)
        if i < 7:
            assert engine.on_trade(EquityTrade("SPY", start + i * MINUTE_MS + 1, 9.0, 1, 1, 1, None, None, 0)).sma9 is None
    engine.on_bar(MinuteBar("SPY", start, 0, 0, 0, 1000.0, 1.0, 0, 0))  # an old bar replayed
    value = engine.on_trade(EquityTrade("SPY", start + 9 * MINUTE_MS, 9.0, 1, 1, 1, None, None, 0))
    assert value.sma9 == pytest.approx((36 + 9) / 9)


def test_a_repaired_bar_moves_nothing_the_stream_computed():
    """Bars filled in from price history arrive late and out of order: SMA9 stays the stream's own."""
    streamed, with_repairs = IndicatorEngine(), IndicatorEngine()
    start = utc_ms(2024, 3, 11, 14, 0)
    for i in range(10):
        bar = MinuteBar("SPY", start + i * MINUTE_MS, 0, 0, 0, float(i + 1), 1.0, i, 0)
        streamed.on_bar(bar)
        with_repairs.on_bar(bar)
    with_repairs.on_bar(MinuteBar("SPY", start + 10 * MINUTE_MS, 0, 0, 0, 500.0, 1.0, -1, 0, "repaired"))
    trade = EquityTrade("SPY", start + 11 * MINUTE_MS, 9.0, 1, 1, 1, None, None, 0)
    assert with_repairs.on_trade(trade) == streamed.on_trade(trade)


def test_on_records_groups_by_symbol_and_reports_rejects():
    engine = IndicatorEngine()
    t = utc_ms(2024, 3, 11, 14, 0)
    bad_price = EquityTrade("SPY", t, float("nan"), 1, 1, 1, None, None, 0)
    quote = EquityQuote("SPY", t, 1.0, 2.0, 1, 1, 0)
    good = EquityTrade("SPY", t + 1, 10.0, 1, 2, 1, None, None, 0)
    other = EquityTrade("QQQ", t + 1, 20.0, 1, 1, 1, None, None, 0)
    late = EquityTrade("SPY", t - 86_400_000, 9.0, 1, 1, 1, None, None, 0)  # yesterday's session
    result = engine.on_records([bad_price, quote, good, other, late])
    assert {symbol: [v.price for v in values] for symbol, values in result.values.items()} == {
        "SPY": [10.0], "QQQ": [20.0],
    }
    assert [record for record, _ in result.rejected] == [bad_price, quote, late]
    assert engine.on_trade(EquityTrade("SPY", t + 2, 20.0, 1, 3, 1, None, None, 0)).vwap == 15.0, "rejects left no trace"


# ---- one symbol's state on its own: ring buffer, SMA9, session VWAP ----------------------------------------


def test_ring_keeps_the_last_eight_newer_closes_only():
    state = SymbolIndicators()
    rng = random.Random(3)
    accepted: list[float] = []
    last = None
    for _ in range(3000):
        start = rng.randrange(0, 4000) * 60_000
        close = rng.uniform(1, 1000)
        taken = state.push_close(start, close)
        assert taken == (last is None or start > last)
        if taken:
            accepted.append(close)
            last = start
        price = rng.uniform(1, 1000)
        got = state.sma9(price)
        if len(accepted) < SMA_BARS:
            assert got is None
        else:
            assert math.isclose(got, (sum(accepted[-8:]) + price) / 9, rel_tol=1e-12)
    assert state.held == SMA_BARS and state.last_bar_ms == last


def test_vwap_resets_on_a_new_session_and_refuses_an_older_one():
    state = SymbolIndicators()
    assert state.vwap(100, 10.0, 0) == 10.0, "no volume: the price itself"
    assert state.vwap(100, 10.0, 100) == 10.0
    assert state.vwap(100, 20.0, 300) == 17.5
    assert state.vwap(100, 99.0, 0) == 17.5, "size 0 does not weigh"
    assert state.vwap(200, 30.0, 10) == 30.0, "a new session starts afresh"
    assert state.session_ms == 200
    assert state.vwap(100, 5.0, 10) is None
    assert state.vwap(200, 30.0, 0) == 30.0, "the refused trade left no trace"


def test_vwap_matches_plain_sums_over_many_trades():
    state = SymbolIndicators()
    rng = random.Random(5)
    pv = volume = 0.0
    for _ in range(5000):
        price, size = rng.uniform(100, 600), rng.choice([0, rng.randint(1, 10_000)])
        pv += price * size
        volume += size
        assert math.isclose(state.vwap(1, price, size), pv / volume if volume else price, rel_tol=1e-9)


def test_a_trade_reads_the_ring_without_changing_it():
    state = SymbolIndicators()
    for i in range(SMA_BARS):
        state.push_close(i, float(i))
    before = list(state.closes)
    assert (state.sma9(9.0), state.vwap(1, 9.0, 2)) == ((28 + 9) / 9, 9.0)
    assert state.closes == before


def test_an_index_level_has_an_sma9_from_its_bars_and_no_vwap():
    engine = IndicatorEngine()
    start = utc_ms(2024, 3, 11, 14, 0)
    assert engine.on_level(IndexLevel("$SPX", start, 5100.0, 7)) == IndicatorValue("$SPX", start, 0, 5100.0, None,
                                                                                   None, 7)
    for i in range(8):
        engine.on_bar(MinuteBar("$SPX", start + i * MINUTE_MS, 0, 0, 0, 5100.0 + i, 0.0, i, 0))
    result = engine.on_records([IndexLevel("$SPX", start + 9 * MINUTE_MS, 5110.0, 8)])
    (value,) = result.values["$SPX"]
    assert value.sma9 == pytest.approx((sum(5100.0 + i for i in range(8)) + 5110.0) / 9)
    assert (value.vwap, value.day_volume, result.rejected) == (None, 0, [])


def test_a_futures_vwap_runs_over_cmes_day_and_restarts_at_18_new_york_and_nowhere_else():
    """Injected trades of /ES across a whole CME day: 17:59 Monday is Monday's day; 18:00 opens Tuesday's, which
    runs through midnight and 09:30 (a stock's reset) unbroken until 18:00 Tuesday."""
    engine = IndicatorEngine()

    def trade(hour: int, minute: int, day: int, price: float, size: int) -> float | None:
        ms = int(datetime(2026, 12, day, hour, minute, tzinfo=NEW_YORK).timestamp() * 1000)
        return engine.on_trade(EquityTrade("/ES", ms, price, size, size, size, None, None, 0, "/ESZ26")).vwap

    assert trade(17, 59, 7, 6000.0, 10) == pytest.approx(6000.0)
    assert trade(18, 0, 7, 6010.0, 10) == pytest.approx(6010.0), "18:00 opens the next CME day"
    assert trade(23, 59, 7, 6020.0, 10) == pytest.approx(6015.0)
    assert trade(0, 1, 8, 6030.0, 20) == pytest.approx((6010 * 10 + 6020 * 10 + 6030 * 20) / 40), "not at midnight"
    assert trade(9, 31, 8, 6040.0, 40) == pytest.approx((6010 * 10 + 6020 * 10 + 6030 * 20 + 6040 * 40) / 80), \
        "not at a stock's 09:30"
    assert trade(18, 0, 8, 6100.0, 5) == pytest.approx(6100.0), "and again at 18:00"
    stock = engine.on_trade(EquityTrade("SPY", int(datetime(2026, 12, 8, 9, 31, tzinfo=NEW_YORK).timestamp() * 1000),
                                        600.0, 1, 1, 1, None, None, 0))
    assert stock.vwap == 600.0, "a stock's session is still 09:30's"
