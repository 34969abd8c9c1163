"""SIGTERM and SIGINT become a flag that an actor's loop checks, and a wake-up for a loop that waits.

supervisord stops an actor with TERM; the loop finishes the frame in hand,
drains and flushes, and exits 0 well inside `stopwaitsecs`. A loop may block
on its sockets for a second or more while idle: the signal also writes a
byte to `wake_fd` (Python's wakeup fd), which a `Subscriber` polls beside
its socket, so a stop is seen at once however long the wait.
"""

from __future__ import annotations

import signal
import socket


class Shutdown:
    def __init__(self) -> None:
        self.requested = False
        self._wake, self._waker = socket.socketpair()
        for end in (self._wake, self._waker):
            end.setblocking(False)
        signal.set_wakeup_fd(self._waker.fileno(), warn_on_full_buffer=False)
        signal.signal(signal.SIGTERM, self._request)
        signal.signal(signal.SIGINT, self._request)

    @property
    def wake_fd(self) -> int:
        """Readable once a signal has arrived."""
        return self._wake.fileno()

    def _request(self, signum: int, frame: object) -> None:
        self.requested = True
