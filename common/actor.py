"""What every actor process is made of, around its own loop.

Configuration read once, JSON logs under the actor's name, a stop flag set by
SIGTERM/SIGINT, cumulative counters, and the actor's bus publisher. The
actor modules keep only what is theirs: what they subscribe to and what they
do with a frame.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from common import config as configuration
from common import log
from common.observe.stats import ActorStats
from common.shutdown import Shutdown
from common.transport.bus import Publisher, Subscriber
from common.transport.delivery import Follower
from common.transport.messages import Envelope
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


class Actor:
    def __init__(self, name: str, journaled: bool = False):
        self.name = name
        self.config = configuration.load()
        self.config.ensure_dirs()
        self.log = log.setup(name)
        self.shutdown = Shutdown()
        self.stats = ActorStats(name, self.config.stats_interval)
        self.publisher = Tickerplant(self.config, name) if journaled else Publisher(self.config, name)
        self._offsets_file = self.config.offsets_file(name)
        self._next_tick = 0.0

    def subscriber(self) -> Subscriber:
        return Subscriber(self.config, self.name, wake_fd=self.shutdown.wake_fd)

    def wait(self, *due: float) -> float:
        """For a loop that calls `tick`: seconds it may block on its sockets, until the first of its own
        `due` times, the next counters or heartbeat `tick` sends, or WAIT."""
        return wait_until(max(self._next_tick, min(self.stats.due, self.publisher.heartbeat_due)), *due)

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

    def follow(self, streams: tuple[str, ...], take: Callable[[Envelope], None]) -> Follower:
        """Follow journaled `streams` exactly once; losses and torn journal tails are reported here."""
        return Follower(self.config.journal_dir, streams, take, self.lost, self._torn)

    def _torn(self, tail: object) -> None:
        self.log.warning("journal ends in a torn record (a crash mid-write); read up to it", extra={"tail": repr(tail)})

    def tick(self, follower: Follower | None = None) -> None:
        """Call every loop iteration: counters out when due, heartbeat when idle.

        It does its work at most every TICK_EVERY: under load a loop turns
        once per frame, and nothing here is due that often. With the
        `follower` of an actor whose work is done once taken (it journals
        what it sends), its positions are shared for pruning.
        """
        now = time.monotonic()
        if now < self._next_tick:
            return
        self._next_tick = now + TICK_EVERY
        if follower is not None:
            self.stats.replayed = follower.replayed
            follower.share(self._offsets_file)
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
