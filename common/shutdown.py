"""SIGTERM and SIGINT become a flag that an actor's loop checks.

supervisord stops an actor with TERM; the loop finishes the frame in hand,
drains and flushes, and exits 0 well inside `stopwaitsecs`.
"""

from __future__ import annotations

import signal


class Shutdown:
    def __init__(self) -> None:
        self.requested = False
        signal.signal(signal.SIGTERM, self._request)
        signal.signal(signal.SIGINT, self._request)

    def _request(self, signum: int, frame: object) -> None:
        self.requested = True
