"""After a connection ended: why (`cause_of`), how long to wait, the status to show and how loudly to log it.

The wait is capped exponential backoff with jitter (`Backoff`), at least the
cause's floor (Schwab's limits, codes 12 and 19, wait STREAM_LIMIT_BACKOFF).
A connection that streamed longer than HEALTHY_AFTER was a success, so the
backoff starts again from its minimum; so it does after a session that ended
as planned and after a new token file (`reset`). Another streamer holding
Schwab's one connection shows as the status `connection_limit`, which needs a
person; the rest as `reconnecting`. A limit is logged as an error, any other
cause as a warning.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass

from common.feed.streamer import Backoff, Cause, cause_of

#: A connection that streamed this long before failing starts the backoff from its minimum again.
HEALTHY_AFTER = 60.0


@dataclass(frozen=True)
class Retry:
    """What to do about one ended connection."""

    cause: Cause
    delay: float
    status: str
    level: int


class ReconnectPolicy:
    """Turns each ended connection into a `Retry`, remembering how long the last one streamed."""

    def __init__(self, backoff: Backoff, limit_backoff: float, monotonic: Callable[[], float] = time.monotonic):
        self.backoff = backoff
        self.limit_backoff = limit_backoff
        self.monotonic = monotonic
        self.streaming_since: float | None = None

    def streaming(self) -> None:
        """The connection is up and subscribed: from now on it counts towards HEALTHY_AFTER."""
        self.streaming_since = self.monotonic()

    def reset(self) -> None:
        """The next failure waits the minimum again."""
        self.backoff.reset()

    def after(self, error: BaseException) -> Retry:
        cause = cause_of(error, self.limit_backoff)
        if self.streaming_since is not None and self.monotonic() - self.streaming_since > HEALTHY_AFTER:
            self.backoff.reset()
        self.streaming_since = None
        status = cause.name if cause.name == "connection_limit" else "reconnecting"
        level = logging.ERROR if cause.floor else logging.WARNING
        return Retry(cause, self.backoff.next(cause.floor), status, level)
