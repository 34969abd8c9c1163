"""Black-Scholes against its own identities: parity, finite differences, IV round trip."""

from __future__ import annotations

import math

import pytest

from common.analytics.greeks import MIN_YEARS, black_scholes, implied_volatility

CASES = [
    (580.0, 580.0, 30 / 365, 0.045, 0.15),
    (580.0, 560.0, 2 / 365, 0.045, 0.25),
    (172.9, 190.0, 0.5, 0.03, 0.40),
    (50.0, 40.0, 1.0, 0.0, 0.60),
]


@pytest.mark.parametrize("spot,strike,years,rate,vol", CASES)
def test_put_call_parity(spot, strike, years, rate, vol):
    call = black_scholes(spot, strike, years, rate, vol, True)
    put = black_scholes(spot, strike, years, rate, vol, False)
    assert call.price - put.price == pytest.approx(spot - strike * math.exp(-rate * years), abs=1e-9)
    assert call.delta - put.delta == pytest.approx(1.0)
    assert call.gamma == pytest.approx(put.gamma)
    assert call.vega == pytest.approx(put.vega)


@pytest.mark.parametrize("is_call", [True, False])
@pytest.mark.parametrize("spot,strike,years,rate,vol", CASES)
def test_greeks_match_finite_differences(spot, strike, years, rate, vol, is_call):
    g = black_scholes(spot, strike, years, rate, vol, is_call)

    def price(s=spot, t=years, r=rate, v=vol):
        return black_scholes(s, strike, t, r, v, is_call).price

    h = spot * 1e-4
    assert g.delta == pytest.approx((price(s=spot + h) - price(s=spot - h)) / (2 * h), rel=1e-4, abs=1e-6)
    assert g.gamma == pytest.approx((price(s=spot + h) - 2 * price() + price(s=spot - h)) / h**2, rel=1e-3, abs=1e-8)
    # Schwab's units: theta per calendar day, vega and rho per percentage point.
    dt = 1 / 365 / 100
    assert g.theta == pytest.approx((price(t=years - dt) - price(t=years + dt)) / (2 * dt) / 365, rel=1e-4, abs=1e-8)
    assert g.vega == pytest.approx((price(v=vol + 1e-4) - price(v=vol - 1e-4)) / 2e-4 / 100, rel=1e-5)
    assert g.rho == pytest.approx((price(r=rate + 1e-5) - price(r=rate - 1e-5)) / 2e-5 / 100, rel=1e-4, abs=1e-9)


@pytest.mark.parametrize("is_call", [True, False])
@pytest.mark.parametrize("spot,strike,years,rate,vol", CASES)
def test_implied_volatility_round_trip(spot, strike, years, rate, vol, is_call):
    price = black_scholes(spot, strike, years, rate, vol, is_call).price
    assert implied_volatility(price, spot, strike, years, rate, is_call) == pytest.approx(vol, abs=1e-6)


def test_no_implied_volatility_outside_arbitrage_bounds():
    assert implied_volatility(0.0, 100, 100, 0.1, 0.0, True) is None
    assert implied_volatility(5.0, 100, 90, 0.1, 0.0, True) is None  # below intrinsic
    assert implied_volatility(101.0, 100, 90, 0.1, 0.0, True) is None  # above the spot


def test_expiry_day_is_finite():
    at_expiry = black_scholes(580.0, 580.0, 0.0, 0.045, 0.2, True)
    assert at_expiry == black_scholes(580.0, 580.0, MIN_YEARS, 0.045, 0.2, True)
    assert all(math.isfinite(x) for x in vars(at_expiry).values())
    deep = black_scholes(580.0, 500.0, -1.0, 0.045, 0.2, False)
    assert deep.price == pytest.approx(0.0, abs=1e-12) and deep.delta == pytest.approx(0.0, abs=1e-12)
