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
  session over, the feed away), once the clock passes its end by
  `CLOSE_GRACE_NS`; stopping the writer closes nothing.

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

#: A quiet stream's open interval is closed by the clock this long after it ends: time for a quote ingest
#: stamped just before the end to cross the bus and the writer's batching.
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
        #: The stream's time: the latest record time seen (or closed through by the clock).
        self.time_ns = 0
        self.open: int | None = None
        self.pending: dict[str, Sampled] = {}
        self.last_position = committed
        self._pending_after = committed

    def add(self, records: Iterable[Sampled], position: Position) -> list[tuple[int, Sampled]]:
        """Take one frame's records (taken at `position`); returns the snapshots closed, as (start ns, record)."""
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
        return closed

    def close_quiet(self, now_ns: int) -> list[tuple[int, Sampled]]:
        """Close the open interval if the clock (`now_ns`, time.time_ns()) is past its end by CLOSE_GRACE_NS."""
        if self.open is None or now_ns < (self.open + 1) * self.interval_ns + CLOSE_GRACE_NS:
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

