"""Schwab option symbols: `SPY   251021C00580000` (pure).

The underlying left-justified to 6 characters, the expiration as YYMMDD, C or
P, and the strike times 1000 in 8 digits; a strike of 0 is no contract (no
exchange lists one), so a key carrying it is refused like any malformed one. Written here rather than through
`schwab.orders.options.OptionSymbol`, whose parser returns the strike as a
string and rejects nothing about the layout.
"""

from __future__ import annotations

import re
from datetime import date
from typing import NamedTuple

_SYMBOL = re.compile(r"^([A-Z0-9./$]{1,6}) *(\d{6})([CP])(\d{8})$")


class OptionContract(NamedTuple):
    """A contract's terms. `underlying` is the symbol's root: the underlying itself for a stock's option (SPY),
    one of its roots for an index's (SPXW for $SPX: `underlying_of`)."""

    underlying: str
    expiration: date
    put_call: str
    strike: float


#: An index's option roots (OCC symbology) and how each settles: its PM-settled root, listed for every weekday (the
#: 0DTE one: SPXW), and its monthly AM-settled one (SPX), settled from the expiry day's opening prints and so never
#: traded on it. Any other root is its own underlying, PM-settled.
INDEX_ROOTS = {"SPXW": ("$SPX", "P"), "SPX": ("$SPX", "A"), "NDXP": ("$NDX", "P"), "NDX": ("$NDX", "A"),
               "RUTW": ("$RUT", "P"), "RUT": ("$RUT", "A"), "VIXW": ("$VIX", "A"), "VIX": ("$VIX", "A")}


def underlying_of(contract: OptionContract) -> str:
    """The symbol a contract's options are on: `$SPX` for SPXW and SPX, the root itself for a stock's."""
    return INDEX_ROOTS.get(contract.underlying, (contract.underlying,))[0]


def settlement_of(contract: OptionContract) -> str:
    """'A' (AM-settled, from the expiry day's opening prints) or 'P' (PM-settled, at its close)."""
    return INDEX_ROOTS.get(contract.underlying, ("", "P"))[1]


def roots_of(underlying: str) -> tuple[str, ...]:
    """The roots listed on `underlying`, the PM-settled first: (SPXW, SPX) for $SPX, (SPY,) for SPY."""
    listed = sorted((root for root, (index, _) in INDEX_ROOTS.items() if index == underlying),
                    key=lambda root: INDEX_ROOTS[root][1] != "P")
    return tuple(listed) or (underlying,)


def build(underlying: str, expiration: date, put_call: str, strike: float) -> str:
    if put_call not in ("C", "P"):
        raise ValueError(f"put_call must be 'C' or 'P', not {put_call!r}")
    if not 0 < strike < 100_000 or len(underlying) > 6:
        raise ValueError(f"no option symbol for {underlying!r} at strike {strike}")
    return f"{underlying:<6}{expiration:%y%m%d}{put_call}{round(strike * 1000):08d}"


def parse(symbol: str) -> OptionContract:
    """(underlying, expiration, 'C' or 'P', strike); ValueError when `symbol` is not one."""
    match = _SYMBOL.match(symbol)
    if not match or len(symbol) != 21:
        raise ValueError(f"{symbol!r} is not a Schwab option symbol (e.g. 'SPY   251021C00580000')")
    underlying, yymmdd, put_call, strike = match.groups()
    if int(strike) == 0:
        raise ValueError(f"{symbol!r} has a strike of 0, which no option has")
    expiration = date(2000 + int(yymmdd[:2]), int(yymmdd[2:4]), int(yymmdd[4:]))
    return OptionContract(underlying, expiration, put_call, int(strike) / 1000.0)


def description(contract: OptionContract) -> str:
    """Schwab's human label, e.g. 'GOOG 05/17/2024 70.00 C'."""
    return f"{contract.underlying} {contract.expiration:%m/%d/%Y} {contract.strike:.2f} {contract.put_call}"
