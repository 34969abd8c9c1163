"""Log, then publish, in one place (kdb+tick's tickerplant): a publisher whose journaled streams survive a drop.

A `Tickerplant` is an actor's `Publisher` that appends every frame of a
journaled kind to the actor's journal before it sends it, so a consumer that
missed frames (a full high-water mark, a restart) replays them from there
(`common/transport/delivery.py`). Which kinds are journaled it is told when
built: the registry above transport says (`common/streams.py`). It also keeps
the journal small: idle, it fsyncs what it appended; once a minute it deletes
the segments every consumer has passed and that are past JOURNAL_RETENTION,
and holds the journal under JOURNAL_MAX_BYTES (`journal.prune` says in which
order).

Overflow policy: a journal that cannot be written (a full disk) is counted
and logged, and the frame is still sent: the live stream never stops for
the journal. A segment deleted at the cap before its consumers passed it is
an ERROR naming its streams and counted as a journal error: its consumers
will report the frames missing, and nothing is deleted silently.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence

import zmq

from common.config import Config
from common.transport.bus import Publisher
from common.transport.delivery import passed_by_all
from common.transport.journal import JournalFull, JournalWriter, Spans, prune
from common.transport.messages import Record
from common.transport.topics import kind_of

log = logging.getLogger(__name__)

#: How often segments every consumer has committed are pruned.
PRUNE_INTERVAL = 60.0


class Tickerplant(Publisher):
    def __init__(self, config: Config, name: str, journaled: frozenset[str], context: zmq.Context | None = None):
        """`journaled`: the kinds whose frames it journals, worked out once by its builder from the registry and
        the settings (`common/streams.py`, `journaled_kinds`), not per frame sent; any other kind is only sent."""
        super().__init__(config, name, context)
        self.journal = JournalWriter(
            config.journal_dir(name), name, self.epoch,
            segment_bytes=config.journal_segment_bytes,
            segment_seconds=config.journal_segment_age,
            fsync_interval=config.journal_fsync_interval,
        )
        self.journal_errors = 0
        self._journaled = journaled
        self._next_prune = time.monotonic() + PRUNE_INTERVAL
        self._spans: Spans = {}

    @property
    def journal_bytes(self) -> int:
        return self.journal.bytes_on_disk

    def send(self, records: Sequence[Record]) -> int:
        """Journal the frame of `records` (if their kind is journaled), then send it; returns its seq."""
        kind = kind_of(records)
        name, seq, payload = self.frame(kind, records)
        if kind in self._journaled:
            self._journal(payload)
        self.emit(name, payload, kind)
        return seq

    def _journal(self, payload: bytes) -> None:
        try:
            self.journal.append(payload)
        except JournalFull as error:
            self.journal_errors += 1
            if self.journal_errors == 1 or self.journal_errors % 1000 == 0:
                log.error("journal write failed: frames are sent but not journaled",
                          extra={"reason": str(error), "failures": self.journal_errors})

    def tick(self) -> bool:
        idle = super().tick()
        if idle:
            self.journal.sync()  # idle: what was appended last is on disk within a heartbeat
        now = time.monotonic()
        if now >= self._next_prune:
            self._next_prune = now + PRUNE_INTERVAL
            self.prune()
        return idle

    def prune(self) -> None:
        """Drop segments every consumer has passed once past retention, and whatever the cap cannot hold."""
        # Before any consumer has said what it follows, nothing is consumed: only the cap deletes.
        follows, passed = passed_by_all(self._config.offsets_dir) if self._config.offsets_dir.exists() else ((), {})
        pruned = prune(self._config.journal_dir(self.name), passed, self._config.journal_retention, follows=follows,
                       max_bytes=self._config.journal_max_bytes, spans=self._spans)
        for dropped in pruned.dropped:
            self.journal_errors += 1
            log.error("journal over JOURNAL_MAX_BYTES: a segment its consumers had not passed was deleted; "
                      "they will report these frames missing",
                      extra={"segment": str(dropped.segment), "max_bytes": self._config.journal_max_bytes,
                             "lost_up_to": dropped.unconsumed,
                             "committed": {stream: passed.get(stream) for stream in dropped.unconsumed}})

    def close(self) -> None:
        super().close()
        self.journal.close()
