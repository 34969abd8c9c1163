"""Option snapshots: per contract, its latest quote in each interval, a pure function of ingest's journal.

Storing every option quote costs a free database its space in a day (46
contracts at one update a second are 1.1 M rows); a snapshot per contract
per `OPTION_STORE_INTERVAL` (a minute by default) keeps what a chart, a
backtest or a greeks study reads. The rule, implemented once here:

- **Time** is ingest's: each quote's `received_ns`, when ingest read it from
  Schwab, journaled with it. Along the stream, in journal order, a quote's
  time is the latest seen so far (`received_ns`, or the stream's time if
  that is later: a clock stepped back never sends a quote into an interval
  already closed). Intervals are multiples of the interval since the epoch;
  an interval that divides an hour starts on the New York clock.
- **A snapshot** of contract c for interval k is c's last quote (in journal
  order) whose time falls in k, stamped with k's start. A contract with no
  quote in an interval gets no row for it: nothing is invented.
- **An interval closes** when the stream's time reaches its end (any later
  quote, of any contract on the stream), or, when the stream is quiet (the
  session over, the feed away), once its publisher's own word shows it past
  the end by `CLOSE_GRACE_NS` with no frame of the stream for as long: the
  send time of its later frames of other kinds (trades go on after the
  options' close) or of its heartbeats (`close_quiet`). Never the writer's
  clock: a writer that is behind never closes an interval whose quotes are
  still on their way, and a replayed recording closes by its own time.
  Stopping the writer closes nothing.

So the rows are a pure function of the journaled quotes, whatever happens
to the writer. What an open interval holds is not stored yet; the position
from which it can be rebuilt is `resume_after`: the writer commits that,
not the last frame it took, as the option stream's offset, and after a
crash or restart replays the journal from there and closes the same
intervals with the same quotes. A frame that straddles two intervals is
read again on replay, and its snapshots of the earlier one come out the same
(that frame held each contract's last quote of it), skipped as stored.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Protocol

from common.transport.messages import Position

#: A quiet stream's open interval is closed once its publisher has sent for this long past its end, and nothing of
#: the stream for as long: far more than ingest takes from stamping a quote to sending its frame.
CLOSE_GRACE_NS = 5_000_000_000


class Sampled(Protocol):
    """What a snapshot needs of a record: whose it is and when ingest received it."""

    symbol: str
    received_ns: int


class Snapshots:
    """One stream's open interval: each contract's latest record in it, and where replay would rebuild it."""

    def __init__(self, interval_ns: int, committed: Position | None = None):
        if interval_ns <= 0:
            raise ValueError(f"a snapshot interval is positive, not {interval_ns} ns")
        self.interval_ns = interval_ns
        #: The stream's time: the latest record time seen (or closed through by `close_quiet`).
        self.time_ns = 0
        self.open: int | None = None
        self.pending: dict[str, Sampled] = {}
        self.last_position = committed
        self._pending_after = committed
        #: When the publisher sent the stream's last frame (its clock, ns).
        self.last_sent_ns = 0

    def add(self, records: Iterable[Sampled], position: Position, sent_ns: int = 0) -> list[tuple[int, Sampled]]:
        """Take one frame's records (taken at `position`, sent at `sent_ns`); returns the snapshots closed, as
        (start ns, record)."""
        closed: list[tuple[int, Sampled]] = []
        for record in records:
            self.time_ns = max(self.time_ns, record.received_ns)
            interval = self.time_ns // self.interval_ns
            if self.open is not None and interval > self.open:
                closed += self._close()
            if not self.pending:
                self._pending_after = self.last_position
            self.open = interval
            self.pending[record.symbol] = record
        self.last_position = position
        self.last_sent_ns = max(self.last_sent_ns, sent_ns)
        return closed

    def close_quiet(self, heard_ns: int) -> list[tuple[int, Sampled]]:
        """Close the open interval if the publisher, by a frame or heartbeat it sent at `heard_ns`, is past its end
        and past the stream's last frame by CLOSE_GRACE_NS."""
        if (self.open is None or heard_ns < (self.open + 1) * self.interval_ns + CLOSE_GRACE_NS
                or heard_ns < self.last_sent_ns + CLOSE_GRACE_NS):
            return []
        self.time_ns = max(self.time_ns, (self.open + 1) * self.interval_ns)
        return self._close()

    @property
    def resume_after(self) -> Position | None:
        """The position to commit for this stream: every record up to it is in a closed interval (its snapshots
        already made); the records after it are what the open interval holds."""
        return self._pending_after if self.pending else self.last_position

    def _close(self) -> list[tuple[int, Sampled]]:
        start = self.open * self.interval_ns
        closed = [(start, record) for record in self.pending.values()]
        self.pending.clear()
        self.open = None
        return closed

