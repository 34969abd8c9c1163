"""What the writer holds between COPYs (pure, clock passed in).

A batch is due when it reaches `max_rows` (BATCH_SIZE) or when its oldest
record has waited `max_age` seconds (BATCH_INTERVAL). A record's wait starts
when its frame was sent, not when the writer took it: frames that queued
on the socket while a flush ran have waited already, so they do not wait a
whole interval more (that was most of the tick-to-commit tail). The writer
rests while a batch fills and then takes in everything queued, so a backlog
drains in full batches, not one frame per flush. Overflow policy: the batcher never drops and never grows
past one flush: the writer flushes as soon as a batch is full, and while a
flush runs the bus socket's high-water mark is what pushes back.
"""

from __future__ import annotations

from collections import defaultdict


class Batcher:
    def __init__(self, max_rows: int, max_age: float):
        self.max_rows = max_rows
        self.max_age = max_age
        self._rows: dict[str, list[tuple]] = defaultdict(list)
        self._count = 0
        self._oldest: float | None = None

    def __len__(self) -> int:
        return self._count

    def add(self, table: str, rows: list[tuple], since: float) -> None:
        """Hold a frame's rows for `table`; `since`: when they started waiting (see `waiting_since`)."""
        self._rows[table].extend(rows)
        self._count += len(rows)
        if self._oldest is None or since < self._oldest:
            self._oldest = since

    def waiting_since(self, now: float, waited: float) -> float:
        """When rows that have `waited` seconds already began to: never before one `max_age` ago, so a
        replayed frame from long ago is simply due."""
        return now - min(max(waited, 0.0), self.max_age)

    def deadline(self) -> float | None:
        """When the held rows become due by age; None when empty."""
        return None if self._oldest is None else self._oldest + self.max_age

    def full(self) -> bool:
        return self._count >= self.max_rows

    def due(self, now: float) -> bool:
        return self.full() or (self._oldest is not None and now >= self._oldest + self.max_age)

    def take(self) -> dict[str, list[tuple]]:
        """Everything held, by table; the batcher is empty afterwards."""
        rows = dict(self._rows)
        self._rows = defaultdict(list)
        self._count = 0
        self._oldest = None
        return rows
