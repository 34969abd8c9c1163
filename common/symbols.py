"""What kind of instrument a STREAM_TICKERS symbol is, from its spelling (pure; imports nothing of ours).

Schwab spells an index with a leading `$` (`$SPX`, `$VIX`, `$NDX`, `$RUT`),
and everything else this service streams as a ticker (`SPY`, `BRK.B`). The
settings check and the feed both ask here, so a symbol is classed once.

An index has a level, not trades: no volume is ever traded in it, so no
trade is derived from it and it has no VWAP (`common/feed/services/
levelone_equities.py`, `IndexLevel`).
"""

from __future__ import annotations

import re

EQUITY, INDEX = "equity", "index"
#: Each kind's spelling: an equity 1-10 of A-Z 0-9 . / - starting with a letter; an index `$` and 1-9 more.
SPELLINGS = {
    EQUITY: re.compile(r"[A-Z][A-Z0-9./-]{0,9}"),
    INDEX: re.compile(r"\$[A-Z][A-Z0-9.]{0,8}"),
}


def kind_of(symbol: str) -> str | None:
    """The instrument kind `symbol` is spelled as (EQUITY, INDEX), or None for no symbol Schwab streams."""
    for kind, spelling in SPELLINGS.items():
        if spelling.fullmatch(symbol):
            return kind
    return None


def is_index(symbol: str) -> bool:
    return symbol.startswith("$")
