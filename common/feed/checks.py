"""What a value in a Schwab item may be, checked alike for every service (pure).

Each service's item check (`common/feed/services/`) is built from these:

- a key is a plausible symbol (`SYMBOL_KEY`): 1-15 of `A-Z 0-9 . / $ -`
  starting with a letter, digit, `$` or `/` (`BRK.B`, `/ES`, `$SPX`);
- prices are finite, above zero and below `PRICE_CEILING`; a bid, ask, last
  or mark of 0 means "no quote" (None), not a price;
- sizes, volumes, open interest and a bar's sequence are from 0 to
  `VOLUME_CEILING` (`size_invalid` below, `size_implausible` above): more
  than any symbol has ever traded in a day, and within the 64-bit integers
  the bus and the tables carry (msgspec reads a JSON integer of any size);
- times are within `TIME_BEHIND` before to `TIME_AHEAD` after the frame's own
  timestamp (which `common/feed/edge.py` holds to the receive clock first).

A value outside these raises `Invalid`, naming the reason it is counted by.
"""

from __future__ import annotations

import math
import re
from typing import Any

from msgspec import UNSET, UnsetType

#: A price above this is damage, not a market (Berkshire's A shares trade under a million).
PRICE_CEILING = 10_000_000.0
#: A time this far before its frame is stale state (a snapshot's last trade before a long weekend is younger).
TIME_BEHIND = 14 * 86_400_000
#: Or this far after it: clocks differ by milliseconds, not minutes.
TIME_AHEAD = 300_000
#: Shares (or contracts) no count can reach: the busiest symbols trade billions in a day, the whole US market
#: some tens of billions; far below the 2**63 a bus frame or a bigint column holds.
VOLUME_CEILING = 1_000_000_000_000
SYMBOL_KEY = re.compile(r"[A-Z0-9$/][A-Z0-9./$-]{0,14}")


class Invalid(ValueError):
    """An item's value outside what Schwab can mean: the message says which and why."""

    def __init__(self, reason: str, detail: str):
        super().__init__(detail)
        self.reason = reason


def key(value: str, pattern: re.Pattern[str] = SYMBOL_KEY) -> None:
    if not pattern.fullmatch(value):
        raise Invalid("key_implausible", f"key {value[:40]!r} ({len(value)} characters) is not a symbol")


def price(value: float, name: str) -> float:
    if not math.isfinite(value):
        raise Invalid("price_not_finite", f"{name} is {value}")
    if not 0 < value < PRICE_CEILING:
        raise Invalid("price_out_of_range", f"{name} is {value}: not above 0 and below {PRICE_CEILING:g}")
    return value


def quote(value: float | None | UnsetType, name: str) -> float | None | UnsetType:
    """A bid, ask, last or mark: 0 (or null) is no quote; anything else must be a price."""
    if value is UNSET:
        return UNSET
    return None if value is None or value == 0 else price(value, name)


def counts(item: Any, names: tuple[str, ...]) -> None:
    for name in names:
        value = getattr(item, name)
        if value is UNSET or value is None:
            continue
        if value < 0:
            raise Invalid("size_invalid", f"{name} is {value}")
        if value > VOLUME_CEILING:
            raise Invalid("size_implausible", f"{name} is {str(value)[:30]}, above {VOLUME_CEILING:g}")


def times(item: Any, names: tuple[str, ...], frame_ms: int) -> None:
    for name in names:
        value = getattr(item, name)
        if value is not UNSET and value is not None and not frame_ms - TIME_BEHIND <= value <= frame_ms + TIME_AHEAD:
            raise Invalid("time_out_of_range", f"{name} {value} is not within {TIME_BEHIND // 86_400_000} days before "
                                               f"to {TIME_AHEAD // 60_000} minutes after the frame's {frame_ms}")
