"""What every actor process is made of, around its own loop.

Configuration read once, JSON logs under the actor's name, a stop flag set by
SIGTERM/SIGINT, cumulative counters, and the actor's bus publisher. The
actor modules keep only what is theirs: what they subscribe to and what they
do with a frame.
"""

from __future__ import annotations

from typing import Any

from common import config as configuration
from common import log
from common.bus import Gap, Publisher, Subscriber
from common.shutdown import Shutdown
from common.stats import ActorStats

#: How long a publisher waits for its consumers before publishing anyway.
CONSUMER_WAIT = 30.0


class Actor:
    def __init__(self, name: str, journaled: bool = False):
        self.name = name
        self.config = configuration.load()
        self.config.ensure_dirs()
        self.log = log.setup(name)
        self.shutdown = Shutdown()
        self.stats = ActorStats(name, self.config.stats_interval)
        self.publisher = Publisher(self.config, name, journaled=journaled)

    def subscriber(self) -> Subscriber:
        return Subscriber(self.config, self.name)

    def wait_for_consumers(self, *names: str) -> None:
        """Hold back until `names` subscribe: PUB/SUB sends nothing to a late subscriber."""
        missing = self.publisher.wait_for_subscribers(names, CONSUMER_WAIT)
        if missing:
            self.log.warning("publishing before these consumers subscribed", extra={"missing": missing})

    def lost(self, gap: Gap) -> None:
        """Count and report frames that never arrived."""
        self.stats.gaps += 1
        self.log.error(
            "frames lost on the bus",
            extra={"stream": gap.stream, "epoch": gap.epoch, "first": gap.first, "last": gap.last},
        )

    def tick(self) -> None:
        """Call every loop iteration: counters out when due, heartbeat when idle."""
        self.stats.maybe_publish(self.publisher)
        self.publisher.tick()

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
