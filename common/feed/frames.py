"""Schwab messages → bus frames: the records of one burst of reads share one frame per kind.

Each message's `data` is decoded and checked at the edge (`common/feed/edge.py`)
and merged per key (`common/feed/levelone.py`); its records wait in a frame
per kind (trade, quote, bar, option) until the burst ends (`flush`) or they
are COALESCE_RECORDS. A rejected item costs only itself: it is counted by
reason and logged at most once a minute per symbol and reason. An item whose
merge fails in a way nobody foresaw is counted alike (`item_failed`, logged
with its traceback): no item's failure escapes to drop the connection.

The receive clock is injected: each message is stamped with it, and a live
publisher (ingest's Schwab connection) holds every frame's own timestamp to it
(`edge.FRAME_AHEAD`, `edge.FRAME_BEHIND`); a replay's publisher is not live,
so a recording of any age replays alike.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any

import msgspec
from msgspec import UNSET

from common.feed import edge
from common.feed.edge import LogLimiter, Rejection
from common.feed.levelone import Incomplete
from common.feed.services import SERVICES
from common.feed.replay import Recorder
from common.observe.stats import ActorStats
from common.transport.bus import Publisher
from common.transport.messages import MinuteBar

#: Records of one burst share a frame per kind until they are this many: a frame this large gains nothing by
#: waiting (Schwab's throttled feed sends few large messages), and its ticks should not.
COALESCE_RECORDS = 100


class FramePublisher:
    """Each message's data, decoded and checked at the edge and merged per key: one bus frame per kind.

    The records of the messages between two `flush` calls (one burst of
    reads) share their frames, until there are COALESCE_RECORDS of them;
    call `flush` when a burst ends, before the books are reset and when the
    connection ends.
    A rejected item is counted by reason (`streaming_metrics`, `/metrics`)
    and logged with an excerpt at most once a minute per symbol and reason;
    it never costs the other items of its message, nor the connection. With
    a `recorder`, each message's data is recorded as received, before it is
    decoded; with `on_bar`, every bar is shown to it as it is made (the
    repair of missed minutes: `common/feed/bar_repair.py`). `clock` is the
    receive clock (epoch ns); a `live` publisher holds each frame's own
    timestamp to it, as ingest's Schwab connection does and a replay does not.
    Whether Schwab marked a service's latest item `delayed` is kept per
    service in the stats (`streaming_metrics.delayed_services`).
    """

    def __init__(self, publisher: Publisher, stats: ActorStats, logger: logging.Logger,
                 recorder: Recorder | None = None, on_bar: Callable[[MinuteBar], None] | None = None,
                 live: bool = False, clock: Callable[[], int] = time.time_ns):
        self.publisher = publisher
        self.stats = stats
        self.logger = logger
        self.limiter = LogLimiter()
        self.recorder = recorder
        self.on_bar = on_bar
        self.live = live
        self.clock = clock
        self.pending: dict[type, list[Any]] = {record: [] for service in SERVICES.values()
                                               for record in service.records}
        self.reset()

    def reset(self) -> None:
        """Forget every symbol's fields: a new connection starts from fresh snapshots, so nothing stale leaks."""
        self.flush()
        self.books = {name: service.book() for name, service in SERVICES.items()}

    def flush(self) -> int:
        """Send what the last messages made, one frame per kind; how many records that was."""
        sent = 0
        for record_type, records in self.pending.items():
            if records:
                self.publisher.send(records)
                sent += len(records)
                self.pending[record_type] = []
        self.stats.records_out += sent
        return sent

    def on_data(self, data: msgspec.Raw | list[Any]) -> None:
        started, received = time.perf_counter_ns(), self.clock()
        if self.recorder is not None:
            self.recorder.write(data)
        decoded = edge.decode(data, received_ms=received // 1_000_000, live=self.live)
        out = self.pending
        items = len(decoded.rejections)
        for entry in decoded.entries:
            items += len(entry.updates)
            if entry.updates and (delayed := getattr(entry.updates[-1], "delayed", UNSET)) is not UNSET:
                self.stats.delayed[entry.service] = delayed
            for update in entry.updates:
                try:
                    self._merge(entry.service, update, entry.frame_ms, received, out)
                except Incomplete as error:
                    self.reject(Rejection(entry.service, update.key, error.reason, str(error), ""))
                except Exception as error:  # what nobody foresaw costs its item, never the connection
                    self.reject(Rejection(entry.service, update.key, "item_failed", repr(error), ""), error)
        for rejection in decoded.rejections:
            self.reject(rejection)
        if sum(map(len, out.values())) >= COALESCE_RECORDS:
            self.flush()
        self.stats.records_in += items
        self.stats.batch(items, started)

    def _merge(self, service: str, update: Any, frame_ms: int, received: int, out: dict[type, list[Any]]) -> None:
        for record in self.books[service].merge(update, frame_ms, received):
            if self.on_bar is not None and type(record) is MinuteBar:
                self.on_bar(record)
            out[type(record)].append(record)

    def reject(self, rejection: Rejection, error: Exception | None = None) -> None:
        """Count `rejection`; log it, with the traceback of an unforeseen `error`, at most once a minute per key
        and reason."""
        self.stats.rejected(rejection.reason)
        if self.limiter.allow(rejection.key, rejection.reason, time.monotonic()):
            self.logger.error("content item rejected", exc_info=error, extra={
                "service": rejection.service, "key": rejection.key, "reason": rejection.reason,
                "detail": rejection.detail[:300], "item": rejection.excerpt})
