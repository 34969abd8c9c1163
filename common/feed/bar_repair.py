"""Minutes the stream missed, found and filled from Schwab's minute price history.

The rule: ingest keeps, per ticker, the start of the newest bar the stream
delivered (seeded at start from its own journal, so a restart is covered
too). A stream bar that starts more than one bar after it shows that ingest
was not streaming in between (a restart, a reconnect, an outage, a token
wait): the bars that started strictly between the two are missing
(`BarGap`). Once streaming again, `BarRepair` asks the price history for
exactly that window and publishes what it gets as bars marked `repaired`
on the bar stream, journaled and stored exactly once like the stream's.

What follows from it, said here once:
- the table never lets a repaired bar replace one the stream delivered
  (`common/store/db.py`), and the indicator takes no repaired bar: SMA9 and
  VWAP stay the stream's own, in its order, so a repaired gap is not
  recomputed and VWAP leaves out the gap's volume;
- a window with no candles (no trades, or outside the sessions streamed)
  stores nothing; a candle no market has is refused at the edge
  (`common/feed/price_history.py`) and counted as rejected;
- a fetch that fails is tried again with backoff, up to MAX_ATTEMPTS times
  in a row (about a quarter of an hour); then the gap is dropped, said in
  an ERROR line naming its window, and counted (`gap_unrepaired`): its
  minutes are `make backfill`'s. A window older than MAX_AGE is not asked
  for (Schwab keeps about 48 days of minutes; older history is backfill's);
- the task is supervised by its own loop: whatever a fetch raises, foreseen
  (HTTP, token, a body Schwab should not send) or not (logged with its
  traceback), costs an attempt at that gap, never the task, which goes on
  with the queue;
- its input is bounded: a gap that ends after the clock plus AHEAD_MS (the
  latest a stream bar passes the edge) or does not end after it starts is
  damage, from a journal or a kept file written before the edge refused such
  frames; it is dropped when queued (`gap_implausible`), and a newest bar
  that far ahead, read from the journal at start, is forgotten, so it cannot
  blind gap detection for the ticker until it comes;
- `bars_missing` counts the bars the market had in a window (the price
  history's candles) that the stream did not deliver, and `bars_repaired`
  those stored; a window of no trading (overnight, a weekend, a quiet
  minute) misses nothing. Both reach `streaming_metrics`.

A future's bars (`/ES`) are not repaired: schwab-py documents price history
as the equity endpoint's ("Get price history for a symbol"), and Schwab's
Trader API documents `/pricehistory` for equity symbols only; nothing says it
serves `/ES`. Their missed minutes stay missing (README, *Futures*).

Overflow policy: gaps wait in an unbounded queue, one per ticker per
outage (a few hundred at most), and are fetched one at a time.

The queue outlives a restart: it is kept in a file (`PendingGaps`), so a gap
found but not yet fetched when ingest stops (a fetch backing off, say) is
repaired by the next run; the journal alone could not tell it, as the stream
bars after it are newer.
"""

from __future__ import annotations

import asyncio
import datetime
import logging
import os
import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import msgspec
from authlib.integrations.base_client.errors import OAuthError

from common.durable import read_or_set_aside, write_durably
from common.feed import checks, edge
from common.feed.price_history import PriceHistoryError, decode_history, history_bars
from common.feed.streamer import Backoff
from common.observe.stats import ActorStats
from common.streams import BY_RECORD, KINDS
from common.transport.delivery import newest_sent
from common.symbols import is_future
from common.transport.messages import MinuteBar

#: Windows starting longer ago than this are left to `make backfill`.
MAX_AGE_MS = 40 * 86_400_000
#: A position after every frame a stream will ever have: what `read_envelopes` then passes over unread.
PASSED = (1 << 63, 0)
#: A fetch that failed is tried again after 1 s, doubling up to a minute.
RETRY_FIRST, RETRY_MAX = 1.0, 60.0
#: A gap whose fetch failed this many times in a row is dropped: waits of 1, 2, 4 … 60 s, about 14 minutes of trying.
MAX_ATTEMPTS = 20
#: The latest a stream bar can start, after the clock, and pass the edge: a frame at most FRAME_AHEAD after the
#: clock, carrying a bar at most TIME_AHEAD after the frame.
AHEAD_MS = edge.FRAME_AHEAD + checks.TIME_AHEAD
#: What a fetch may raise that is foreseen (a warning); anything else is an ERROR, with its traceback.
FORESEEN = (httpx.HTTPError, OAuthError, PriceHistoryError, OSError)


@dataclass(frozen=True)
class BarGap:
    """`symbol`'s bars that started strictly between `after_ms` and `before_ms` never came from the stream."""

    symbol: str
    after_ms: int
    before_ms: int

    def minutes(self, bar_ms: int) -> int:
        """How many bars could have started in the window; how many did, only the price history says."""
        return max((self.before_ms - self.after_ms) // bar_ms - 1, 0)


class BarGaps:
    """Per ticker, the newest stream bar; a stream bar more than one `bar_ms` after it opens a gap."""

    def __init__(self, bar_ms: int, newest: dict[str, int] | None = None):
        self.bar_ms = bar_ms
        self.newest: dict[str, int] = dict(newest or {})

    def seen(self, bar: MinuteBar) -> BarGap | None:
        if bar.source != "stream" or is_future(bar.symbol):
            return None  # a future's minutes: Schwab's price history is documented for stocks only
        last = self.newest.get(bar.symbol)
        if last is not None and bar.start_ms <= last:
            return None  # a revision or a replay of a bar already seen
        self.newest[bar.symbol] = bar.start_ms
        if last is None or bar.start_ms - last <= self.bar_ms:
            return None
        return BarGap(bar.symbol, last, bar.start_ms)


def newest_stream_bars(journal: Path, deployment: str) -> dict[str, int]:
    """Per ticker, the start of the newest stream bar ingest's own journal holds.

    Read at every start, over up to a day of journal: the other streams' frames
    are passed over on their leading fields, undecoded.
    """
    bars = BY_RECORD[MinuteBar]
    others = {kind.stream(deployment): PASSED for kind in KINDS
              if kind.publisher == bars.publisher and kind is not bars}

    def stream_bar(record: object) -> tuple[str, tuple] | None:
        if isinstance(record, MinuteBar) and record.source == "stream":
            return record.symbol, (record.start_ms,)
        return None

    newest = newest_sent(journal, stream_bar, only=bars.stream(deployment), after=others)
    return {symbol: start for symbol, (start,) in newest.items()}


class PendingGaps:
    """The gaps waiting for repair, kept in `path` across restarts.

    The file is one JSON array of gaps, `[{"symbol": "SPY", "after_ms": …,
    "before_ms": …}, …]`, in the order they will be fetched, written whole to
    a temporary file and renamed into place, so a reader sees the old list or
    the new one. It is written when a gap is queued and when one is done: a
    few times per outage. A file that cannot be read is set aside as
    `*.unreadable` and said so in an ERROR line (the gaps it held are lost to
    repair, not to `make backfill`).
    """

    _decode = msgspec.json.Decoder(list[BarGap])

    def __init__(self, path: Path, logger: logging.Logger):
        self.path = path
        self.log = logger

    def load(self) -> list[BarGap]:
        return read_or_set_aside(self.path, self._decode.decode) or []

    def save(self, gaps: deque[BarGap]) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        write_durably(self.path, msgspec.json.encode(list(gaps)))


def utc(ms: int) -> datetime.datetime:
    return datetime.datetime.fromtimestamp(ms / 1000, datetime.timezone.utc)


class BarRepair:
    """Fetches each gap's window from the price history and publishes the bars found, one gap at a time.

    `connect` makes the Schwab REST client (schwab-py's AsyncClient), when
    first needed; `send` publishes a frame of records (the tickerplant's:
    journaled, then sent); `now_ms` is the wall clock, for MAX_AGE and
    AHEAD_MS; `kept` holds the queue across restarts (None: in memory only).
    """

    def __init__(self, gaps: BarGaps, connect: Callable[[], Any], send: Callable[[Sequence[MinuteBar]], int],
                 stats: ActorStats, logger: logging.Logger, extended: bool,
                 now_ms: Callable[[], int] = lambda: time.time_ns() // 1_000_000, kept: PendingGaps | None = None):
        self.gaps = gaps
        self.connect = connect
        self.send = send
        self.stats = stats
        self.log = logger
        self.extended = extended
        self.now_ms = now_ms
        self.client: Any = None
        self.kept = kept
        self.pending: deque[BarGap] = deque()
        #: Set when a gap is queued, so the loop sleeps without waking while there is nothing to repair.
        self.queued = asyncio.Event()
        self.backoff = Backoff(RETRY_FIRST, RETRY_MAX)
        self.retry_at = 0.0
        #: Failed fetches of the gap at the head of the queue, in a row.
        self.failures = 0
        self._forget_future_bars()
        loaded = kept.load() if kept is not None else []
        for gap in loaded:
            self.queue(gap)
        if self.pending:
            self.log.info("gaps an earlier run found, queued for repair", extra={"gaps": len(self.pending)})
        if len(self.pending) != len(loaded):
            self._keep()  # what was dropped stays dropped

    def _forget_future_bars(self) -> None:
        """A newest bar later than any the edge lets through (read from an old journal) would hide every gap
        until it came: forgotten, so the ticker's next bar starts afresh."""
        latest = self.now_ms() + AHEAD_MS
        for symbol, start_ms in list(self.gaps.newest.items()):
            if start_ms > latest:
                del self.gaps.newest[symbol]
                self.log.warning("newest stream bar in the journal starts in the future; forgotten, so it hides "
                                 "no gap", extra={"ticker": symbol, "start": edge.when(start_ms)})

    def seen(self, bar: MinuteBar) -> None:
        """Every bar ingest publishes passes here; a gap it shows is queued."""
        gap = self.gaps.seen(bar)
        if gap is not None:
            self.queue(gap)

    def queue(self, gap: BarGap) -> None:
        now = self.now_ms()
        if not gap.after_ms < gap.before_ms <= now + AHEAD_MS:
            self.stats.rejected("gap_implausible")
            self.log.error("gap no stream could have missed dropped: it ends in the future or before it starts",
                           extra={"ticker": gap.symbol, "after": edge.when(gap.after_ms),
                                  "before": edge.when(gap.before_ms), "now": edge.when(now)})
            return
        if gap.after_ms < now - MAX_AGE_MS:
            self.log.warning("bars missing from too long ago to repair; `make backfill` loads them",
                             extra={"ticker": gap.symbol, "after": edge.when(gap.after_ms),
                                    "before": edge.when(gap.before_ms), "minutes": gap.minutes(self.gaps.bar_ms)})
            return
        self.pending.append(gap)
        self._keep()
        self.queued.set()

    def _keep(self) -> None:
        if self.kept is None:
            return
        try:
            self.kept.save(self.pending)
        except OSError as error:  # a full disk, say: the queue still holds them, only a restart would forget
            self.log.warning("gaps waiting for repair not saved; a restart now would forget them",
                             extra={"path": str(self.kept.path), "gaps": len(self.pending), "reason": str(error)})

    async def run(self, stopping: Callable[[], bool]) -> None:
        """Repair queued gaps until `stopping`; with none queued it waits for one (the caller cancels it
        on stop), after a failure for the backoff. Nothing a fetch raises ends it."""
        while not stopping():
            if not self.pending:
                self.queued.clear()
                await self.queued.wait()
                continue
            if (wait := self.retry_at - time.monotonic()) > 0:
                await asyncio.sleep(wait)
                continue
            gap = self.pending[0]
            try:
                await self.repair(gap)
            except Exception as error:  # supervised here: any failure costs an attempt at this gap, never the task
                self._failed(gap, error)
                continue
            self._next()

    def _failed(self, gap: BarGap, error: Exception) -> None:
        """One more failed fetch of `gap`: tried again after the backoff, or dropped after MAX_ATTEMPTS."""
        self.failures += 1
        self.client = None  # a refused token or a broken session: the next try starts afresh
        reason = str(error)[:300] or repr(error)
        if self.failures >= MAX_ATTEMPTS:
            self.stats.rejected("gap_unrepaired")
            self.log.error("bar repair gave up on a gap; `make backfill` loads its minutes", extra={
                "ticker": gap.symbol, "after": edge.when(gap.after_ms), "before": edge.when(gap.before_ms),
                "minutes": gap.minutes(self.gaps.bar_ms), "attempts": self.failures, "reason": reason})
            self._next()
            return
        delay = self.backoff.next()
        self.retry_at = time.monotonic() + delay
        foreseen = isinstance(error, FORESEEN)
        self.log.log(logging.WARNING if foreseen else logging.ERROR, "bar repair failed; trying again",
                     exc_info=None if foreseen else error, extra={
                         "ticker": gap.symbol, "reason": reason, "attempt": self.failures,
                         "retry_in_s": round(delay, 2)})

    def _next(self) -> None:
        """The gap at the head is done with, repaired or given up: on to the next, afresh."""
        self.pending.popleft()
        self._keep()
        self.backoff.reset()
        self.failures = 0

    async def repair(self, gap: BarGap) -> None:
        """One gap's window asked of the price history; its good candles published as repaired bars."""
        if self.client is None:
            self.client = self.connect()
        start, end = gap.after_ms + 1, gap.before_ms - 1
        response = await self.client.get_price_history_every_minute(
            gap.symbol, start_datetime=utc(start), end_datetime=utc(end), need_extended_hours_data=self.extended)
        response.raise_for_status()
        found = history_bars(decode_history(response.content), gap.symbol, start, end, "repaired", time.time_ns())
        for _, reason in found.rejected:
            self.stats.rejected(reason)
        self.stats.bars_missing += len(found.bars) + len(found.rejected)
        if found.bars:
            self.send(found.bars)
            self.stats.records_out += len(found.bars)
            self.stats.bars_repaired += len(found.bars)
        self.log.info("bars repaired", extra={
            "ticker": gap.symbol, "after": edge.when(gap.after_ms), "before": edge.when(gap.before_ms),
            "minutes": gap.minutes(self.gaps.bar_ms), "missing": len(found.bars) + len(found.rejected),
            "repaired": len(found.bars), "rejected": len(found.rejected)})
