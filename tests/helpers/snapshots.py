"""The option-snapshot rule recomputed plainly, for tests: what common/store/snapshots.py must store."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import msgspec


class Quote(msgspec.Struct, frozen=True):
    """The two fields a snapshot reads of a record."""

    symbol: str
    received_ns: int


def expected_snapshots(records: Iterable[tuple[Any, Any]], interval_ns: int = 60_000_000_000,
                       closed_before_ns: int | None = None) -> set[tuple[int, Any]]:
    """(interval start ns, record) of every snapshot of a whole stream of (record, position) in journal order:
    per symbol the last record of each interval, a record's time being the latest `received_ns` so far. Only
    intervals the stream's own time has passed (or ending at or before `closed_before_ns`) are closed."""
    last: dict[tuple[int, str], Any] = {}
    stream_ns = 0
    for record, _ in records:
        stream_ns = max(stream_ns, record.received_ns)
        last[(stream_ns // interval_ns, record.symbol)] = record
    open_interval = stream_ns // interval_ns
    if closed_before_ns is not None and (open_interval + 1) * interval_ns <= closed_before_ns:
        open_interval += 1
    return {(interval * interval_ns, record) for (interval, _), record in last.items() if interval < open_interval}
