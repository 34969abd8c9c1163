"""How ingest waits while it has nothing to stream: for a session, a backoff, or a new token file.

A wait is idle, not asleep: it wakes every IDLE_TICK to run the actor's tick
(counters, heartbeats) and to see a stop request, which ends every wait at
the next wake; near-zero CPU. Time comes in as dependencies (a market
`Clock`, a monotonic clock, a sleep), so a test runs any wait on fake time.
"""

from __future__ import annotations

import asyncio
import datetime
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from common.feed.market_hours import Clock, SystemClock, Window
from common.observe.stats import ActorStats

#: While idle (market closed, backing off, waiting for a token), the loop wakes this often.
IDLE_TICK = 1.0

#: When to wake to log in `lead` before the next window (None: stream now), and that window: `MarketSchedule.plan`.
Plan = Callable[[datetime.datetime, datetime.timedelta], tuple[datetime.datetime | None, Window]]


def utc(moment: datetime.datetime) -> str:
    return moment.astimezone(datetime.timezone.utc).isoformat()


@dataclass(frozen=True)
class Idle:
    """Waiting without work, on the given clocks, for the actor that waits: its `tick` and its stop request."""

    stopping: Callable[[], bool]
    tick: Callable[[], None]
    clock: Clock = field(default_factory=SystemClock)
    monotonic: Callable[[], float] = time.monotonic
    sleep: Callable[[float], Awaitable[None]] = asyncio.sleep

    async def wait(self, seconds: float) -> None:
        """`seconds` of the monotonic clock, or less when a stop is requested."""
        until = self.monotonic() + seconds
        while not self.stopping() and (left := until - self.monotonic()) > 0:
            await self.sleep(min(IDLE_TICK, left))
            self.tick()

    async def until(self, wake: datetime.datetime) -> None:
        """Until the market clock reads `wake`, or a stop is requested."""
        while not self.stopping() and self.clock.now() < wake:
            try:
                await asyncio.wait_for(self.clock.sleep_until(wake), IDLE_TICK)
            except TimeoutError:
                pass
            self.tick()


class SessionWait:
    """Logged out until shortly (`lead` seconds) before the next market session, then that session's window."""

    def __init__(self, plan: Plan, lead: float, idle: Idle, stats: ActorStats, logger: logging.Logger):
        self.plan = plan
        self.lead = datetime.timedelta(seconds=lead)
        self.idle = idle
        self.stats = stats
        self.log = logger

    async def next_window(self) -> Window | None:
        """The window to stream in now, after sleeping until it is near; None when stopping first."""
        wake, window = await asyncio.to_thread(self.plan, self.idle.clock.now(), self.lead)  # may ask Schwab
        if wake is None:
            return window
        self.stats.status = "market_closed"
        self.log.info("market closed: logged out until shortly before the session",
                      extra={"wake_at": utc(wake), "session_start": utc(window.start),
                             "session_end": utc(window.end), "sessions": list(window.sessions)})
        await self.idle.until(wake)
        return None if self.idle.stopping() else window
