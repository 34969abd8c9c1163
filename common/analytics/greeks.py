"""Black-Scholes price, greeks and implied volatility (pure, stdlib only).

Conventions are Schwab's: theta is per calendar day, vega and rho per one
percentage point (of volatility and of the rate). No dividends. Time to
expiry is floored at one minute, so the expiry day itself (0DTE) never
divides by zero.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

#: One minute, in years: the shortest time to expiry the model is asked about.
MIN_YEARS = 60.0 / (365.0 * 24 * 3600)
MIN_VOL = 1e-4
MAX_VOL = 10.0


@dataclass(frozen=True)
class Greeks:
    price: float
    delta: float
    gamma: float
    theta: float
    vega: float
    rho: float


def _cdf(x: float) -> float:
    return 0.5 * math.erfc(-x / math.sqrt(2.0))


def _pdf(x: float) -> float:
    return math.exp(-0.5 * x * x) / math.sqrt(2.0 * math.pi)


def black_scholes(spot: float, strike: float, years: float, rate: float, vol: float, is_call: bool) -> Greeks:
    """Price and greeks of a European option; `vol` and `rate` are fractions (0.2 for 20 %)."""
    t = max(years, MIN_YEARS)
    v = max(vol, MIN_VOL)
    root_t = math.sqrt(t)
    d1 = (math.log(spot / strike) + (rate + 0.5 * v * v) * t) / (v * root_t)
    d2 = d1 - v * root_t
    discount = math.exp(-rate * t)
    gamma = _pdf(d1) / (spot * v * root_t)
    vega = spot * _pdf(d1) * root_t / 100.0
    decay = -spot * _pdf(d1) * v / (2.0 * root_t)
    if is_call:
        price = spot * _cdf(d1) - strike * discount * _cdf(d2)
        delta = _cdf(d1)
        theta = decay - rate * strike * discount * _cdf(d2)
        rho = strike * t * discount * _cdf(d2) / 100.0
    else:
        price = strike * discount * _cdf(-d2) - spot * _cdf(-d1)
        delta = _cdf(d1) - 1.0
        theta = decay + rate * strike * discount * _cdf(-d2)
        rho = -strike * t * discount * _cdf(-d2) / 100.0
    return Greeks(price, delta, gamma, theta / 365.0, vega, rho)


def implied_volatility(
    price: float, spot: float, strike: float, years: float, rate: float, is_call: bool
) -> float | None:
    """The volatility at which Black-Scholes gives `price`; None outside the no-arbitrage bounds.

    Bisection: the price is monotone in volatility, so it always converges,
    where Newton's method stalls on deep in- or out-of-the-money contracts.
    """
    low, high = MIN_VOL, MAX_VOL
    if price <= 0:
        return None
    at_low = black_scholes(spot, strike, years, rate, low, is_call).price
    at_high = black_scholes(spot, strike, years, rate, high, is_call).price
    if not at_low <= price <= at_high:
        return None
    for _ in range(100):
        mid = 0.5 * (low + high)
        if black_scholes(spot, strike, years, rate, mid, is_call).price < price:
            low = mid
        else:
            high = mid
        if high - low < 1e-10:
            break
    return 0.5 * (low + high)
