"""Sequence numbers per stream: how a publisher numbers its frames, and the one judge of what arrived.

Every frame carries (stream, epoch, seq). The epoch numbers its publisher's
runs: its start time in ns, or one more than the run before's when the
clock reads no later than that (`next_epoch`); seq counts that stream's
frames from 1 within the epoch, so positions `(epoch, seq)` order every
frame a stream ever had. The clock alone would not do: stepped back across a
restart (NTP at boot, a stale RTC), it would make every frame of the new run
look already had, discarded live, skipped on replay, pruned, with no gap
counted. `common/identity.py` keeps each publisher's last epoch on disk, so
the rule holds across restarts. A consumer keeps, per stream, the position
it has taken, and judges each frame:

- `had`: at or before that position (a duplicate, or a replay of what it
  has): discard it;
- `next`: seq + 1 in the same epoch, or seq 1 of a stream it never saw:
  take it;
- `ahead`: frames before it are missing. A consumer of journaled streams
  replays them first (`common/transport/delivery.py`); what is still
  missing then is a `Gap`, reported, never filled with anything invented.

A new epoch's first frame is `ahead` of the old epoch but no loss: its
publisher restarted. A consumer that joins late and needs no history
(`late_join`, such as metrics, which rolls up counters from now on) takes a
stream's first frame at whatever seq, and a new epoch at whatever seq: what
was sent before it listened was not lost to it. A heartbeat names each
stream's last seq, so a frame dropped just before a quiet spell is noticed
too (`behind`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from common.transport.messages import Envelope, Heartbeat, Position

Verdict = Literal["had", "next", "ahead"]


def next_epoch(clock_ns: int, last: int | None) -> int:
    """The epoch of a publisher's new run, from the clock's reading and the last run's epoch (None: no run
    before it): always larger than the last, whatever the clock reads (the module's rule)."""
    return clock_ns if last is None else max(clock_ns, last + 1)


class Sequencer:
    """Numbers frames per stream within one epoch, starting at 1."""

    def __init__(self, epoch: int):
        self.epoch = epoch
        self.last_seqs: dict[str, int] = {}

    def next(self, stream: str) -> int:
        seq = self.last_seqs.get(stream, 0) + 1
        self.last_seqs[stream] = seq
        return seq


@dataclass(frozen=True)
class Gap:
    """The frames of `stream` after position `after`, up to and including `through`, never arrived."""

    stream: str
    after: Position
    through: Position

    @property
    def count(self) -> int | None:
        """How many frames, where one epoch says (a restarted publisher's lost tail is of unknown length)."""
        return self.through[1] - self.after[1] if self.after[0] == self.through[0] else None


class StreamPositions:
    """Per stream, the position a consumer has taken; each frame judged against it (the module's rule)."""

    def __init__(self, committed: dict[str, Position] | None = None, late_join: bool = False):
        self.positions: dict[str, Position] = dict(committed or {})
        self.late_join = late_join
        #: Positions taken since the last commit: what the next commit records.
        self.uncommitted: dict[str, Position] = {}

    def classify(self, frame: Envelope) -> Verdict:
        known = self.positions.get(frame.stream)
        if known is None:
            return "next" if frame.seq == 1 or self.late_join else "ahead"
        if (frame.epoch, frame.seq) <= known:
            return "had"
        if known[0] == frame.epoch:
            return "next" if frame.seq == known[1] + 1 else "ahead"
        return "next" if self.late_join else "ahead"

    def gap(self, frame: Envelope) -> Gap | None:
        """What an `ahead` frame shows lost, or None when it only starts a restarted publisher's new epoch."""
        known = self.positions.get(frame.stream)
        if known is not None and known[0] != frame.epoch and frame.seq == 1:
            return None
        return Gap(frame.stream, known or (frame.epoch, 0), (frame.epoch, frame.seq - 1))

    def behind(self, heartbeat: Heartbeat) -> list[Gap]:
        """The streams whose last seq, by this heartbeat, were not all taken: each as the Gap not yet seen."""
        gaps = []
        for stream, last in heartbeat.last_seqs.items():
            known = self.positions.get(stream)
            if self.late_join and (known is None or known[0] != heartbeat.epoch):
                continue  # sent before this consumer listened
            after = known or (heartbeat.epoch, 0)
            if after < (heartbeat.epoch, last):
                gaps.append(Gap(stream, after, (heartbeat.epoch, last)))
        return gaps

    def take(self, frame: Envelope) -> None:
        self.positions[frame.stream] = self.uncommitted[frame.stream] = (frame.epoch, frame.seq)

    def skip(self, gap: Gap) -> None:
        """Count what a reported gap covers as passed: it will not come (a consumer with no journal to read)."""
        self.positions[gap.stream] = gap.through

    def committed(self) -> dict[str, Position]:
        """Hand over what the commit records, and start a new batch."""
        done, self.uncommitted = self.uncommitted, {}
        return done
