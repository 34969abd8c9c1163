"""What every actor process is made of, and the one loop it turns.

Configuration read once, JSON logs under the actor's name, a stop flag set by
SIGTERM/SIGINT, cumulative counters, and the actor's bus publisher. An actor
module keeps only what is its own, as a `Work`: what it subscribes to, what
it does with a frame, what it does on its own time. `Actor.run` turns the
loop around it, the same for every bus-driven actor:

    start → { its duties; wait for a frame (or rest while a batch fills);
              the frame taken; counters, heartbeat, shared positions } until SIGTERM
          → drain what upstream still sends (followers) → stop → last counters.

Frames of the streams a `Work` follows are taken exactly once through its
journals (`common/transport/delivery.py`), a damaged journal record counted,
logged and read past; any others as they come, a gap reported to
`Work.lost`. ingest alone turns a different loop, an asyncio one around the
Schwab socket (`common/feed/`), and uses the rest of this frame.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from typing import Any

from common import config as configuration
from common import log
from common.observe.stats import ActorStats
from common.shutdown import Shutdown
from common.streams import journaled_kinds
from common.transport.bus import Publisher, Subscriber
from common.transport.delivery import Follower, log_damaged
from common.transport.journal import Damaged, TornTail
from common.transport.messages import Envelope, Heartbeat, Record
from common.transport.sequence import Gap
from common.transport.tickerplant import Tickerplant

#: How long a publisher waits for its consumers before publishing anyway.
CONSUMER_WAIT = 30.0
#: `tick` works at most this often; heartbeats, counters and shared positions are due every second or more.
TICK_EVERY = 0.05
#: The longest a loop waits on its sockets: a stop signal ends the wait at once (`Shutdown.wake_fd`), and an
#: idle actor's own duties (counters every IDLE_SAMPLES intervals, spaced-out heartbeats) come sooner.
WAIT = 5.0


def wait_until(*due: float) -> float:
    """Seconds until the first of `due` (time.monotonic() times), at most WAIT: an idle loop wakes for its
    duties only, every few seconds, not five times a second."""
    now = time.monotonic()
    return max(0.0, min(now + WAIT, *due) - now)


class Work:
    """One actor's own part of the loop `Actor.run` turns; every hook has a default that does nothing."""

    #: (publisher, record type): what it receives.
    subscriptions: tuple[tuple[str, type[Record]], ...] = ()
    #: The journaled streams among them that it takes exactly once (replayed on start and after a loss).
    follows: tuple[str, ...] = ()
    #: Who must be listening before it publishes (PUB/SUB sends nothing to a late subscriber).
    consumers: tuple[str, ...] = ()
    #: A followed frame is done once taken (its result is journaled as sent), so the positions taken are
    #: shared for pruning as they move; a work that is done only at its commit shares them itself.
    done_when_taken = True
    #: Errors of a turn that `recover` mends (a database that went away); anything else ends the process.
    recoverable: tuple[type[Exception], ...] = ()
    #: On stop: wait for upstream's goodbyes, give up on a silent one after `drain_quiet` s, and stop after
    #: `drain_limit` s whatever happens (within supervisord's stopwaitsecs).
    drain_quiet, drain_limit = 2.0, 10.0
    #: A gap in a stream it does not follow is a loss to report; False where a missed frame costs nothing.
    reports_loss = True

    def start(self, follower: Follower | None) -> bool:
        """Before the first turn, subscribed: catch up from the journals. False: asked to stop meanwhile."""
        if follower is not None:
            follower.catch_up_all()
        return True

    def take(self, frame: Envelope) -> None:
        """A frame of its subscriptions, in order per stream."""

    def heard(self, beat: Heartbeat) -> None:
        """A heartbeat of a followed publisher, after the frames it showed missing were taken from the journal."""

    def duty(self, now: float) -> None:
        """Its own work, every turn (`now` is time.monotonic()); cheap when nothing is due."""

    def due(self) -> float:
        """When (time.monotonic()) it next needs a turn without a frame."""
        return math.inf

    def gathering(self) -> float | None:
        """While a batch fills, when it is due: the loop rests until then and takes everything queued at once
        (one wake per batch, not per frame). None: wake for each frame."""
        return None

    def recover(self, error: Exception) -> bool:
        """Mend what a `recoverable` error broke; False when asked to stop meanwhile."""
        return False

    def stop(self) -> None:
        """After the drain: finish what is in hand."""

    def close(self) -> None:
        """Release what it holds (sockets, servers, connections)."""


class Actor:
    def __init__(self, name: str, journaled: bool = False, counters_on_bus: bool = True):
        """`journaled`: its publisher is a tickerplant, journaling the kinds the registry journals
        (`common/streams.py`); `counters_on_bus`: publish its counters for metrics; metrics itself rolls its own
        up directly."""
        self.name = name
        self.counters_on_bus = counters_on_bus
        self.config = configuration.load()
        self.log = log.setup(name)  # first: what making the directories warns of is a JSON line of this actor
        self.config.ensure_dirs()
        self.shutdown = Shutdown()
        self.stats = ActorStats(name, self.config.stats_interval)
        self.publisher = Tickerplant(self.config, name, journaled_kinds(self.config.opted_in)) if journaled \
            else Publisher(self.config, name)
        self._offsets_file = self.config.offsets_file(name)
        self._next_tick = 0.0

    def subscriber(self) -> Subscriber:
        return Subscriber(self.config, self.name, wake_fd=self.shutdown.wake_fd)

    def wait(self, *due: float) -> float:
        """For a loop that calls `tick`: seconds it may block on its sockets, until the first of its own
        `due` times, the next counters or heartbeat `tick` sends, or WAIT."""
        owed = self.publisher.heartbeat_due
        if self.counters_on_bus:
            owed = min(owed, self.stats.due)
        return wait_until(max(self._next_tick, owed), *due)

    def wait_for_consumers(self, *names: str) -> None:
        """Hold back until `names` subscribe: PUB/SUB sends nothing to a late subscriber."""
        missing = self.publisher.wait_for_subscribers(names, CONSUMER_WAIT)
        if missing:
            self.log.warning("publishing before these consumers subscribed", extra={"missing": missing})

    def lost(self, gap: Gap) -> None:
        """Count and report frames that neither the bus nor any journal delivered: a real loss."""
        self.stats.gaps += 1
        self.log.error("frames lost", extra={"stream": gap.stream, "after": gap.after, "through": gap.through,
                                             "count": gap.count})

    def follow(self, streams: tuple[str, ...], take: Callable[[Envelope], None],
               heard: Callable[[Heartbeat], None] | None = None) -> Follower:
        """Follow journaled `streams` exactly once; losses, torn journal tails and damaged records are reported
        here."""
        return Follower(self.config.journal_dir, streams, take, self.lost, self._torn, self._damaged, heard)

    def _torn(self, tail: TornTail) -> None:
        self.log.warning("journal ends in a torn record (a crash mid-write); read up to it", extra={
            "segment": str(tail.segment), "offset": tail.offset, "skipped_bytes": tail.length})

    def _damaged(self, damage: Damaged) -> None:
        """A damaged journal record, read past: a rejection counted and an ERROR line, never a crash (a restart
        would meet it again)."""
        self.stats.rejected("journal_record_damaged")
        log_damaged(damage, self.log)

    def run(self, work: Work) -> None:
        """Turn the loop around `work` until SIGTERM (the module docstring draws it), then stop cleanly."""
        if work.consumers:
            self.wait_for_consumers(*work.consumers)
        subscriber = self.subscriber()
        for publisher, record in work.subscriptions:
            subscriber.subscribe(publisher, record)
        follower = self.follow(work.follows, work.take, work.heard) if work.follows else None
        try:
            if work.start(follower) and self._turns(work, subscriber, follower):
                self._finish(work, subscriber, follower)
        finally:
            work.close()
            self.stopped(**({} if follower is None else {"replayed": follower.replayed}))
            subscriber.close()

    def _turns(self, work: Work, subscriber: Subscriber, follower: Follower | None) -> bool:
        """The loop itself; False when a failure could not be mended before the stop."""
        accept = follower.accept if follower is not None else lambda frame: self._admit(work, subscriber, frame)
        shared = follower if work.done_when_taken else None
        self.stats.status = "running"
        while not self.shutdown.requested:
            try:
                work.duty(time.monotonic())
                deadline = work.gathering()
                if deadline is None:
                    accept(subscriber.recv(self.wait(work.due())))
                else:
                    subscriber.rest(self.wait(deadline))
                    while (frame := subscriber.recv_nowait()) is not None:
                        accept(frame)
            except work.recoverable as error:
                if not work.recover(error):
                    return False
            if follower is not None:
                self.stats.replayed = follower.replayed
            self.tick(shared)
        return True

    def _admit(self, work: Work, subscriber: Subscriber, frame: Envelope | Heartbeat | None) -> None:
        if subscriber.admit(frame, self.lost if work.reports_loss else lambda gap: None):
            work.take(frame)

    def _finish(self, work: Work, subscriber: Subscriber, follower: Follower | None) -> None:
        """After SIGTERM: take what upstream still sends (a follower's), then let the work finish what is in hand."""
        try:
            if follower is not None:
                self.drain(subscriber, follower, work.drain_quiet, work.drain_limit)
            work.stop()
        except work.recoverable as error:
            self.log.warning("could not finish on stop; the journals keep it for the next start",
                             extra={"reason": str(error)})

    def tick(self, follower: Follower | None = None) -> None:
        """Call every loop iteration: counters out when due, heartbeat when idle.

        It does its work at most every TICK_EVERY: under load a loop turns
        once per frame, and nothing here is due that often. With the
        `follower` of a work done once taken, its positions are shared for
        pruning.
        """
        now = time.monotonic()
        if now < self._next_tick:
            return
        self._next_tick = now + TICK_EVERY
        if follower is not None:
            follower.share(self._offsets_file)
        if self.counters_on_bus:
            self.stats.maybe_publish(self.publisher)
        self.publisher.tick()

    def drain(self, subscriber: Subscriber, follower: Follower, quiet: float, limit: float) -> None:
        """On stop: take what upstream still sends, then whatever its journals hold beyond it."""
        self.stats.status = "stopping"
        subscriber.drain(follower.accept, quiet, limit)
        follower.catch_up_all()

    def stopped(self, **details: Any) -> None:
        """Last counters and a final heartbeat, so consumers know nothing more is coming."""
        self.stats.status = "stopped"
        self.stats.maybe_publish(self.publisher, force=True)
        self.publisher.close()
        self.log.info(
            "stopped",
            extra={"records_in": self.stats.records_in, "records_out": self.stats.records_out,
                   "errors": self.stats.errors, "gaps": self.stats.gaps, **details},
        )
