"""The numba kernels on their own: ring buffer, SMA9, session VWAP."""

import math
import random

import numpy as np

from common import kernels
from common.kernels import HELD, LAST_BAR_MS, SESSION_MS, new_state, on_trade, push_close, sma9, vwap


def test_ring_keeps_the_last_eight_newer_closes_only():
    closes, ints, _ = new_state()
    rng = random.Random(3)
    accepted: list[float] = []
    last = None
    for _ in range(3000):
        start = rng.randrange(0, 4000) * 60_000
        close = rng.uniform(1, 1000)
        taken = push_close(closes, ints, start, close)
        assert taken == (last is None or start > last)
        if taken:
            accepted.append(close)
            last = start
        price = rng.uniform(1, 1000)
        got = sma9(closes, ints, price)
        if len(accepted) < 8:
            assert math.isnan(got)
        else:
            assert math.isclose(got, (sum(accepted[-8:]) + price) / 9, rel_tol=1e-12)
    assert ints[HELD] == 8 and ints[LAST_BAR_MS] == last


def test_vwap_resets_on_a_new_session_and_refuses_an_older_one():
    _, ints, sums = new_state()
    assert vwap(ints, sums, 100, 10.0, 0) == 10.0, "no volume: the price itself"
    assert vwap(ints, sums, 100, 10.0, 100) == 10.0
    assert vwap(ints, sums, 100, 20.0, 300) == 17.5
    assert vwap(ints, sums, 100, 99.0, 0) == 17.5, "size 0 does not weigh"
    assert vwap(ints, sums, 200, 30.0, 10) == 30.0, "a new session starts afresh"
    assert ints[SESSION_MS] == 200
    assert math.isnan(vwap(ints, sums, 100, 5.0, 10))
    assert vwap(ints, sums, 200, 30.0, 0) == 30.0, "the refused trade left no trace"


def test_vwap_matches_plain_sums_over_many_trades():
    _, ints, sums = new_state()
    rng = random.Random(5)
    pv = volume = 0.0
    for _ in range(5000):
        price, size = rng.uniform(100, 600), rng.choice([0, rng.randint(1, 10_000)])
        pv += price * size
        volume += size
        assert math.isclose(vwap(ints, sums, 1, price, size), pv / volume if volume else price, rel_tol=1e-9)


def test_on_trade_combines_both_without_touching_the_ring():
    closes, ints, sums = new_state()
    for i in range(8):
        push_close(closes, ints, i, float(i))
    before = closes.copy()
    assert on_trade(closes, ints, sums, 1, 9.0, 2) == ((28 + 9) / 9, 9.0)
    assert np.array_equal(closes, before)


def test_warm_up_leaves_compiled_kernels():
    kernels.warm_up()
    assert all(f.signatures for f in (push_close, sma9, vwap, on_trade))
