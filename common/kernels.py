"""numba kernels that advance one symbol's indicator state by one record.

State lives in small numpy arrays owned by `IndicatorState`, so a call from
Python passes a few arrays and scalars, allocates nothing and costs O(1):

- `closes` (float64[SMA_BARS]): ring buffer of the last completed bar closes.
- `ints` (int64[4]): ring head, closes held, last accepted bar start (ms) and
  the VWAP session's anchor (ms); `NO_TIME` where none exists yet.
- `sums` (float64[2]): the session's sum(price * size) and sum(size).

Sums are plain float64: a day's volume is far below 2**53, and a plain sum in
arrival order is as exact as the plain-Python reference it is tested against.
"""

from __future__ import annotations

import numpy as np
from numba import njit

SMA_BARS = 8  # completed closes in SMA9; the live price is the ninth value
NO_TIME = np.iinfo(np.int64).min

HEAD, HELD, LAST_BAR_MS, SESSION_MS = range(4)
PV, VOLUME = range(2)


def new_state() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Fresh (closes, ints, sums) for a symbol never seen before."""
    ints = np.zeros(4, dtype=np.int64)
    ints[LAST_BAR_MS] = NO_TIME
    ints[SESSION_MS] = NO_TIME
    return np.zeros(SMA_BARS, dtype=np.float64), ints, np.zeros(2, dtype=np.float64)


@njit(cache=True)
def push_close(closes: np.ndarray, ints: np.ndarray, start_ms: int, close: float) -> bool:
    """Add a completed bar's close; False (and no change) unless it is newer than the last.

    Replays and reconnects resend bars, so an old or repeated start is ignored.
    """
    if start_ms <= ints[LAST_BAR_MS]:
        return False
    head = ints[HEAD]
    closes[head] = close
    ints[HEAD] = (head + 1) % closes.size
    ints[HELD] = min(ints[HELD] + 1, closes.size)
    ints[LAST_BAR_MS] = start_ms
    return True


@njit(cache=True)
def sma9(closes: np.ndarray, ints: np.ndarray, price: float) -> float:
    """Mean of the held closes and `price`; NaN until the ring is full.

    Summing eight values per call is O(1) and, unlike a running sum, never drifts.
    """
    if ints[HELD] < closes.size:
        return np.nan
    total = 0.0
    for i in range(closes.size):
        total += closes[i]
    return (total + price) / (closes.size + 1)


@njit(cache=True)
def vwap(ints: np.ndarray, sums: np.ndarray, session_ms: int, price: float, size: int) -> float:
    """Add a trade to its session's VWAP and return it; NaN for an earlier session.

    A trade of a newer session resets the sums. A size-0 update moves the price
    but not the VWAP; before any volume the VWAP is the price itself.
    """
    if session_ms < ints[SESSION_MS]:
        return np.nan
    if session_ms > ints[SESSION_MS]:
        ints[SESSION_MS] = session_ms
        sums[PV] = 0.0
        sums[VOLUME] = 0.0
    if size > 0:
        sums[PV] += price * size
        sums[VOLUME] += size
    if sums[VOLUME] == 0.0:
        return price
    return sums[PV] / sums[VOLUME]


@njit(cache=True)
def on_trade(
    closes: np.ndarray, ints: np.ndarray, sums: np.ndarray, session_ms: int, price: float, size: int
) -> tuple[float, float]:
    """(sma9, vwap) as of one trade, in one call from Python."""
    return sma9(closes, ints, price), vwap(ints, sums, session_ms, price, size)


def warm_up() -> None:
    """Compile (or load from the on-disk cache) every kernel with the types used live."""
    closes, ints, sums = new_state()
    push_close(closes, ints, 0, 1.0)
    on_trade(closes, ints, sums, 0, 1.0, 1)
