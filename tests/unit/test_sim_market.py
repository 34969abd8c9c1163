"""The simulator's market: seeded, consistent, and priced by Black-Scholes."""

from __future__ import annotations

from datetime import date

import pytest

from common.analytics.greeks import black_scholes
from common.feed import option_symbols
from common.simulator.market import (
    RATE,
    YEAR_MS,
    Market,
    expirations,
    expiry_ms,
    strikes,
)

T0 = 1_760_000_000_000  # a Thursday, 2025-10-09, 04:53 New York time


def run(market: Market, symbols: list[str], steps: int, dt_ms: int = 97) -> list:
    return [market.step(symbol, T0 + i * dt_ms) for i in range(steps) for symbol in symbols]


def test_same_seed_same_market():
    assert run(Market(7), ["SPY", "XYZ"], 500) == run(Market(7), ["SPY", "XYZ"], 500)
    assert run(Market(7), ["SPY"], 50) != run(Market(8), ["SPY"], 50)


def test_a_symbol_ignores_the_others():
    alone = [e for e in run(Market(7), ["SPY"], 300)]
    together = [e for e in run(Market(7), ["QQQ", "SPY", "AAPL"], 300) if e.quote.symbol == "SPY"]
    assert alone == together


def test_prices_wander_but_stay_near_their_start():
    market = Market(3)
    start = market.quote("SPY", T0).mark
    marks = [market.step("SPY", T0 + i * 1000).quote.mark for i in range(6 * 3600)]  # six hours, one step a second
    assert len(set(marks)) > 500
    assert all(abs(m / start - 1) < 0.1 for m in marks)


def test_quotes_trades_and_volume():
    events = run(Market(3), ["SPY", "PENNY"], 2000)
    trades = [e.trade for e in events if e.trade]
    assert 0.3 < len(trades) / len(events) < 0.6
    sizes = [t.size for t in trades]
    assert any(s % 100 == 0 for s in sizes) and any(s % 100 for s in sizes)
    for symbol in ("SPY", "PENNY"):
        volumes = [e.quote.total_volume for e in events if e.quote.symbol == symbol]
        assert volumes == sorted(volumes)
        mine = [t for t in trades if t.symbol == symbol]
        for before, after in zip(mine, mine[1:]):
            assert after.day_volume == before.day_volume + after.size
    for e in events:
        q = e.quote
        assert 0 < q.bid < q.ask
        decimals = 2 if q.bid >= 1 else 4
        assert round(q.bid, decimals) == q.bid and round(q.ask, decimals) == q.ask
        if e.trade:
            assert q.bid <= e.trade.price <= q.ask and q.last == e.trade.price


def test_bars_agree_with_trades():
    market = Market(11, bar_ms=60_000)
    events = [market.step("SPY", T0 + i * 250) for i in range(2400)]  # ten minutes
    end = T0 + 2400 * 250
    bars = market.bars_after("SPY", 0, end + 60_000)
    trades = [e.trade for e in events if e.trade]
    assert len(bars) >= 10
    for bar in bars:
        inside = [t for t in trades if bar.start_ms <= t.time_ms < bar.start_ms + 60_000]
        prices = [t.price for t in inside]
        assert bar.start_ms % 60_000 == 0
        assert (bar.open, bar.high, bar.low, bar.close) == (prices[0], max(prices), min(prices), prices[-1])
        assert bar.volume == sum(t.size for t in inside)
    assert sum(b.volume for b in bars) == sum(t.size for t in trades)
    assert [b.sequence for b in bars] == list(range(len(bars)))
    assert market.bars_after("SPY", bars[-2].start_ms, end + 60_000) == bars[-1:]


def test_a_bar_completes_only_when_its_minute_has_passed():
    market = Market(11, bar_ms=60_000)
    start = T0 - T0 % 60_000
    for i in range(50):
        market.step("SPY", start + i * 100)
    assert market.bars_after("SPY", 0, start + 59_999) == []
    assert len(market.bars_after("SPY", 0, start + 60_000)) == 1


def test_expirations_and_strikes():
    thursday = date(2025, 10, 9)
    assert expirations(thursday)[:5] == [date(2025, 10, d) for d in (9, 10, 13, 14, 15)]
    assert all(d.weekday() == 4 for d in expirations(thursday)[5:])
    assert expirations(date(2025, 10, 11))[0] == date(2025, 10, 13)  # no 0DTE on a Saturday
    assert strikes(580.3, 2) == [578.0, 579.0, 580.0, 581.0, 582.0]
    assert strikes(12.2, 1) == [11.5, 12.0, 12.5]


def test_option_chain_follows_black_scholes():
    market = Market(5)
    chain = market.chain("SPY", T0)
    spot = market.quote("SPY", T0)
    assert len(chain) == len(expirations(date(2025, 10, 9))) * 41 * 2
    for q in chain[::37]:
        c = option_symbols.parse(q.symbol)
        assert c == q.contract
        years = (expiry_ms(c.expiration) - T0) / YEAR_MS
        model = black_scholes(q.underlying_price, c.strike, years, RATE, 0.2, c.put_call == "C")
        assert q.bid <= q.theoretical <= q.ask or q.ask - q.bid <= 0.02
        assert q.bid <= q.mark <= q.ask
        assert abs(q.underlying_price - spot.mark) < 0.02
        assert (q.delta > 0) == (c.put_call == "C") and q.gamma >= 0 and q.vega >= 0
        assert model.price >= 0 and q.volatility > 0
    atm_call = next(q for q in chain if q.contract.put_call == "C" and abs(q.contract.strike - spot.mark) < 1)
    assert 0.3 < atm_call.delta < 0.7


def test_options_move_with_the_underlying():
    market = Market(5)
    symbol = option_symbols.build("SPY", date(2025, 10, 17), "C", 580.0)
    before = market.option_quote(symbol, T0)
    assert market.option_quote(symbol, T0) == before  # reading changes nothing
    for i in range(400):
        market.step("SPY", T0 + i * 1000)
    after = market.option_quote(symbol, T0 + 400_000)
    assert after.underlying_price != before.underlying_price
    assert (after.theoretical > before.theoretical) == (after.underlying_price > before.underlying_price)
    volumes = [market.step_option(symbol, T0 + 400_000 + i).total_volume for i in range(200)]
    assert volumes == sorted(volumes) and volumes[-1] > volumes[0]
    with pytest.raises(ValueError):
        market.option_quote("SPY", T0)


def test_an_index_level_moves_with_no_book_no_volume_and_no_trade():
    market = Market(7)
    events = run(market, ["$SPX"], 400)
    assert all(event.trade is None for event in events), "nothing is traded in an index"
    quotes = [event.quote for event in events]
    assert {(q.total_volume, q.bid, q.ask, q.bid_size, q.ask_size) for q in quotes} == {(0, 0.0, 0.0, 0, 0)}
    assert len({q.last for q in quotes}) > 100 and 5000 < quotes[-1].last < 7000, "the level moves, near $SPX's"
    bars = market.bars_after("$SPX", 0, T0 + 400 * 97 + 60_000)
    assert bars and {bar.volume for bar in bars} == {0}
