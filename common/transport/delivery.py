"""Exactly-once delivery for a consumer of journaled streams: positions, journal catch-up, shared offsets.

Positions start at what the database says was committed, and each frame is
judged against them (`had`, `next` or `ahead`: `common/transport/sequence.py`).
A frame `ahead` sends the consumer to its publisher's journal first, the
Clone pattern's snapshot; only what neither the bus nor the journal has is
reported lost. ON CONFLICT alone is not exactly-once; this is.

A damaged journal record is reported and read past (`journal.Damaged`), and
an offsets file that cannot be read is set aside and read as absent
(`common/durable.py`): either, raised, would stop every reader at each read.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from pathlib import Path

import msgspec

from common.durable import read_or_set_aside, write_durably
from common.transport.journal import Cursor, Damaged, TornTail, read_envelopes
from common.transport.messages import Envelope, Heartbeat, Position, Record
from common.transport.sequence import Gap, StreamPositions
from common.transport.topics import publisher_of

log = logging.getLogger(__name__)

#: How often a consumer tells publishers (through a file) what it has passed.
SHARE_INTERVAL = 1.0


def log_damaged(damage: Damaged, logger: logging.Logger = log) -> None:
    """One ERROR line for a damaged journal record a reader skipped: where it is, how much was skipped, and why."""
    logger.error("damaged journal record skipped: the frames in it are not replayed", extra={
        "segment": str(damage.segment), "offset": damage.offset, "skipped_bytes": damage.length,
        "reason": damage.reason})


class Follower:
    """Takes every frame of journaled publishers exactly once, in order per stream.

    A live frame that is not the next one of its stream means frames went
    missing (a bus drop, a restart): the publisher's journal is replayed
    after our positions first, and then the live frame is usually `had`.
    What neither the bus nor the journal has is reported to `lost`; a
    journal's torn tail to `torn` and a damaged record, read past, to `damaged`.
    """

    def __init__(
        self,
        journal_dir: Callable[[str], Path],
        streams: tuple[str, ...],
        take: Callable[[Envelope], None],
        lost: Callable[[Gap], None],
        torn: Callable[[TornTail], None],
        damaged: Callable[[Damaged], None],
        heard: Callable[[Heartbeat], None] | None = None,
    ):
        """`streams`: the journaled streams to follow (the registry, `common/streams.py`, names them); `heard`: told
        each heartbeat once what it reveals has been caught up."""
        self.journal_dir = journal_dir
        self.streams = streams
        self.journaled = {publisher_of(name) for name in streams}
        self.take_frame = take
        self.lost = lost
        self.torn = torn
        self.damaged = damaged
        self.heard = heard
        self.positions = StreamPositions({})
        self.replayed = 0
        self._next_share = 0.0
        self._shared: tuple[dict[str, Position], dict[str, Position]] | None = None
        self._cursors: dict[str, Cursor] = {}

    def restart(self, committed: dict[str, Position]) -> None:
        """Positions from what is committed; journals will be read from their start again."""
        self.positions = StreamPositions(committed)
        self._cursors.clear()

    def take(self, frame: Envelope) -> None:
        self.positions.take(frame)
        self.take_frame(frame)

    def share(self, path: Path, held: dict[str, Position] | None = None) -> None:
        """At most once a second, and only when they moved (or the file is gone: set aside as unreadable), share
        the positions passed, so publishers may prune; `held`: per stream, an earlier position a replay would
        start from, whose frames must be kept."""
        now = time.monotonic()
        if now < self._next_share:
            return
        self._next_share = now + SHARE_INTERVAL
        held = held or {}
        if (self.positions.positions, held) != self._shared or not path.exists():
            self._shared = (dict(self.positions.positions), held)
            share_offsets(path, self.streams, *self._shared)

    def catch_up_all(self) -> None:
        """Replay every followed journal: on start, and once more after the shutdown drain,
        since even a publisher's final heartbeat can be dropped on the bus."""
        for publisher in sorted(self.journaled):
            self.catch_up(publisher)

    def catch_up(self, publisher: str) -> None:
        """Replay `publisher`'s journal after our positions (the Clone pattern's snapshot)."""
        journal = self.journal_dir(publisher)
        if not journal.exists():
            return
        cursor = self._cursors.setdefault(publisher, Cursor())
        for frame in read_envelopes(journal, after=self.positions.positions, on_torn=self.torn, cursor=cursor,
                                    on_damaged=self.damaged):
            if frame.stream.startswith(self.streams) and self.positions.classify(frame) != "had":
                self.replayed += 1
                self.take(frame)

    def accept(self, frame: Envelope | Heartbeat | None) -> None:
        if isinstance(frame, Heartbeat):
            if frame.publisher in self.journaled and any(
                    gap.stream.startswith(self.streams) for gap in self.positions.behind(frame)):
                self.catch_up(frame.publisher)  # it sent frames, before going quiet, that we never got
            if self.heard is not None:
                self.heard(frame)
            return
        if frame is None:
            return
        verdict = self.positions.classify(frame)
        if verdict == "ahead" and publisher_of(frame.stream) in self.journaled:
            self.catch_up(publisher_of(frame.stream))
            verdict = self.positions.classify(frame)
        if verdict == "had":
            return
        if verdict == "ahead" and (gap := self.positions.gap(frame)):
            self.lost(gap)
        self.take(frame)


def newest_sent(journal: Path, key: Callable[[Record], tuple[str, tuple] | None], only: str | None = None,
                after: dict[str, Position] | None = None) -> dict[str, tuple]:
    """Per key, the newest version of what a publisher's own journal says it sent.

    A derived actor that rebuilds from its input's journal after a restart
    sends only what is newer than this, so nothing reaches the tables twice.
    `key` maps a record to (name, ordering), or None to skip it; with `only`,
    only that stream's records count, and frames at or before `after`'s
    position of their stream are passed over undecoded. A damaged record is
    logged and read past: what it held does not count.
    """
    newest: dict[str, tuple] = {}
    if journal.exists():
        for frame in read_envelopes(journal, after=after, on_damaged=log_damaged):
            if only is not None and frame.stream != only:
                continue
            for record in frame.records:
                keyed = key(record)
                if keyed is not None and keyed[1] > newest.get(keyed[0], ()):
                    newest[keyed[0]] = keyed[1]
    return newest


class SharedOffsets(msgspec.Struct, frozen=True):
    """A consumer's offsets file, `{offsets_dir}/{consumer}.json`: the stream prefixes it follows, the
    position it has passed per stream, and per stream it holds back (the writer's sampled streams) the
    position a replay would start from. Written durably (`common/durable.py`), so a reader sees the old one or
    the new one, after a power cut too; read by the journaling publishers (what they may prune) and by metrics
    (the writer's lag)."""

    follows: tuple[str, ...]
    positions: dict[str, Position]
    held: dict[str, Position] = msgspec.field(default_factory=dict)

    def kept_from(self, stream: str) -> Position | None:
        """What of `stream` this consumer no longer needs: the position passed, or the one held if earlier."""
        passed, held = self.positions.get(stream), self.held.get(stream)
        return passed if held is None or passed is None else min(passed, held)


_offsets_json = msgspec.json.Decoder(SharedOffsets)


def share_offsets(path: Path, follows: tuple[str, ...], positions: dict[str, Position],
                  held: dict[str, Position] | None = None) -> None:
    """Leave, for the journaling publishers, what this consumer follows, has passed and holds back."""
    path.parent.mkdir(parents=True, exist_ok=True)
    write_durably(path, msgspec.json.encode(SharedOffsets(follows, positions, held or {})))


def shared_offsets(path: Path) -> SharedOffsets | None:
    """What one consumer shared, or None before it has. A file that is not one (empty, cut short, of another
    shape) is set aside as `{name}.unreadable` with an ERROR line naming the fault (or the field), and read as
    absent: its consumer shares again within a second."""
    return read_or_set_aside(path, _offsets_json.decode)


def passed_by_all(offsets_dir: Path) -> tuple[tuple[str, ...], dict[str, Position]]:
    """(every stream prefix someone follows, per stream the position all its followers passed).

    A stream a follower has not reached yet is left out: it must be kept.
    """
    consumers = [shared for path in sorted(offsets_dir.glob("*.json")) if (shared := shared_offsets(path))]
    follows = tuple(sorted({prefix for consumer in consumers for prefix in consumer.follows}))
    streams = {stream for consumer in consumers for stream in consumer.positions}
    passed: dict[str, Position] = {}
    for stream in streams:
        positions = [consumer.kept_from(stream) for consumer in consumers if stream.startswith(consumer.follows)]
        if positions and None not in positions:
            passed[stream] = min(positions)
    return follows, passed
