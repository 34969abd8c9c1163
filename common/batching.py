"""What the writer holds between COPYs (pure, clock passed in).

A batch is due when it reaches `max_rows` (BATCH_SIZE) or when its oldest
record has waited `max_age` seconds (BATCH_INTERVAL). Overflow policy: the
batcher never drops and never grows past one flush: the writer flushes as
soon as a batch is due, and while a flush runs the bus socket's high-water
mark is what pushes back.
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

    def add(self, table: str, rows: list[tuple], now: float) -> None:
        """Hold a frame's rows for `table`."""
        self._rows[table].extend(rows)
        self._count += len(rows)
        if self._oldest is None:
            self._oldest = now

    def deadline(self) -> float | None:
        """When the held rows become due by age; None when empty."""
        return None if self._oldest is None else self._oldest + self.max_age

    def due(self, now: float) -> bool:
        return self._count >= self.max_rows or (self._oldest is not None and now >= self._oldest + self.max_age)

    def take(self) -> dict[str, list[tuple]]:
        """Everything held, by table; the batcher is empty afterwards."""
        rows = dict(self._rows)
        self._rows = defaultdict(list)
        self._count = 0
        self._oldest = None
        return rows
