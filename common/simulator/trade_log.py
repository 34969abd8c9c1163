"""The simulator's trade log: every trade the report counts, on disk instead of in memory.

A run of days sends billions of bytes of trades; tests still need each one to
compare with what was stored. So the report keeps counts only, and each
counted trade is appended here when a log is asked for (`--trade-log PATH`,
or `SIM_TRADE_LOG`). The file is created afresh at start: it holds this run's
trades, exactly those `counts["trades"]` counts.

Format: JSON lines (UTF-8), one object per trade in send order, with the
fields the report used to hold:

    {"symbol":"SPY","trade_time_ms":1764600131480,"price":580.12,"day_volume":4301200,"size":100,"connection":1}

`size` is the volume traded since the symbol's previous update and
`connection` the streamer connection it went out on (numbered from 1).
Lines are buffered until BUFFER_BYTES are held, then written together;
`flush()` writes them at once, and the report calls it before it answers,
so a reader that asked for the report first finds every trade it counts. A
reader that catches a write midway may find its last line unfinished:
`read` leaves that line out.
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import msgspec

if TYPE_CHECKING:  # the reader, used by tests and tools, needs none of the server's imports
    from common.simulator.protocol import SentTrade

#: Lines held before they are written: memory stays small, writes stay few.
BUFFER_BYTES = 64 * 1024


class TradeLog:
    """Appends trades as JSON lines; not thread-safe (the report's lock guards it)."""

    def __init__(self, path: Path):
        self.path = path
        self._file = path.open("wb")
        self._pending = bytearray()
        self._encoder = msgspec.json.Encoder()  # a tenth of json.dumps' cost, at thousands of trades a second

    def append(self, trades: Iterable[SentTrade], connection: int) -> None:
        for trade in trades:
            self._encoder.encode_into(
                {"symbol": trade.symbol, "trade_time_ms": trade.trade_time_ms, "price": trade.price,
                 "day_volume": trade.day_volume, "size": trade.size, "connection": connection},
                self._pending, -1)
            self._pending += b"\n"
        if len(self._pending) >= BUFFER_BYTES:
            self.flush()

    def flush(self) -> None:
        """Write every appended line, whole, to the file."""
        if self._pending:
            self._file.write(self._pending)
            self._file.flush()
            self._pending.clear()

    def close(self) -> None:
        self.flush()
        self._file.close()


def read(path: Path) -> dict[str, list[dict[str, Any]]]:
    """The trades in `path` by symbol, in send order; a last line still being written is left out."""
    trades: dict[str, list[dict[str, Any]]] = defaultdict(list)
    with path.open("rb") as lines:
        for line in lines:
            if not line.endswith(b"\n"):
                break
            trade = json.loads(line)
            trades[trade["symbol"]].append(trade)
    return dict(trades)
