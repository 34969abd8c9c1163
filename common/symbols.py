"""What kind of instrument a STREAM_TICKERS symbol is, from its spelling (pure; imports nothing of ours).

Schwab spells an index with a leading `$` (`$SPX`, `$VIX`, `$NDX`, `$RUT`), a
future with a leading `/`: a product's continuous front month (`/ES`, `/NQ`,
`/MES`) or one contract, its month code and year (`/ESZ26`); everything else
this service streams is a ticker (`SPY`, `BRK.B`). The settings check and the
feed both ask here, so a symbol is classed once.

An index has a level, not trades: no volume is ever traded in it, so no
trade is derived from it and it has no VWAP (`common/feed/services/
levelone_equities.py`, `IndexLevel`).
"""

from __future__ import annotations

import re

EQUITY, INDEX, FUTURE = "equity", "index", "future"
#: CME's month codes, January to December.
MONTH_CODES = "FGHJKMNQUVXZ"
#: Each kind's spelling: an equity 1-10 of A-Z 0-9 . / - starting with a letter; an index `$` and 1-9 more; a
#: future `/`, a product of 1-4 (`ES`, `MES`, `6E`), and for one contract its month code and two-digit year.
SPELLINGS = {
    EQUITY: re.compile(r"[A-Z][A-Z0-9./-]{0,9}"),
    INDEX: re.compile(r"\$[A-Z][A-Z0-9.]{0,8}"),
    FUTURE: re.compile(rf"/[A-Z0-9]{{1,4}}(?:[{MONTH_CODES}][0-9]{{2}})?"),
}


def kind_of(symbol: str) -> str | None:
    """The instrument kind `symbol` is spelled as (EQUITY, INDEX, FUTURE), or None for no symbol Schwab streams."""
    for kind, spelling in SPELLINGS.items():
        if spelling.fullmatch(symbol):
            return kind
    return None


def is_index(symbol: str) -> bool:
    return symbol.startswith("$")


def is_future(symbol: str) -> bool:
    return symbol.startswith("/")
