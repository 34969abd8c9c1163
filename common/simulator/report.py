"""What the simulator sent, counted after each send completed: `/sim/report` and the report file.

A consumer compares what it received with what was really sent, so a frame
counts only once `await ws.send()` returned for it. Only counts live in
memory, whatever the run's length; the trades themselves go to a trade log
on disk when one is asked for (`trade_log.py`).
"""

from __future__ import annotations

import json
import threading
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

from common.durable import write_durably
from common.simulator.protocol import (
    LEVELONE_OPTIONS,
    TICKER_CHARTS,
    TICKER_LEVEL_ONE,
    SentTrade,
)
from common.simulator.trade_log import TradeLog


def now_ms() -> int:
    return time.time_ns() // 1_000_000


class Report:
    """What was sent, counted after each send completed.

    Only counts live in memory, whatever the run's length. Each counted trade
    goes to the trade log when one is asked for (see `trade_log.py`), flushed
    before the report is read, so the log holds every trade counted so far.
    """

    def __init__(self, seed: int, trade_log: Path | None = None):
        self.seed = seed
        self.started_ms = now_ms()
        self.services: dict[str, dict[str, int]] = defaultdict(lambda: {"frames": 0, "items": 0})
        self.counts: dict[str, int] = defaultdict(int, {
            "quotes": 0, "trades": 0, "bars": 0, "option_items": 0, "heartbeats": 0, "responses": 0,
            "connections": 0, "token_refreshes": 0, "logins": 0, "faults": 0, "injected": 0})
        self.trade_log = TradeLog(trade_log) if trade_log else None
        self._lock = threading.Lock()

    def sent(self, service: str, items: list[dict], trades: list[SentTrade], connection: int = 0) -> None:
        with self._lock:
            self.services[service]["frames"] += 1
            self.services[service]["items"] += len(items)
            if service in TICKER_LEVEL_ONE:
                self.counts["trades"] += len(trades)
                self.counts["quotes"] += len(items) - len(trades)
            elif service == LEVELONE_OPTIONS:
                self.counts["option_items"] += len(items)
            elif service in TICKER_CHARTS:
                self.counts["bars"] += len(items)
            if self.trade_log and trades:
                self.trade_log.append(trades, connection)

    def count(self, name: str) -> None:
        with self._lock:
            self.counts[name] += 1

    def to_json(self) -> dict[str, Any]:
        """The counts; every trade they count is in the trade log by the time this returns."""
        with self._lock:
            if self.trade_log:
                self.trade_log.flush()
            return {
                "simulated": True,
                "seed": self.seed,
                "started_ms": self.started_ms,
                "generated_ms": now_ms(),
                "trade_log": str(self.trade_log.path) if self.trade_log else None,
                "services": {service: dict(counts) for service, counts in self.services.items()},
                "counts": dict(self.counts),
            }

    def write(self, path: Path) -> None:
        """Atomically and durably: a reader never sees half a report, nor an empty one after a power cut."""
        write_durably(path, json.dumps(self.to_json()).encode())

    def close(self) -> None:
        with self._lock:
            if self.trade_log:
                self.trade_log.close()
