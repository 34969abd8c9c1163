"""Schwab's refresh token, watched: refused when stale, warned about a day ahead, and waited for when it expired.

A refresh token lasts 7 days from the login that created the token file
(`make login`, run by a person). A connection is not tried on a token Schwab
will refuse; a day before that a warning says what to do. Once it has expired
ingest says so once, as an error, and waits, idle, until a new token file
appears (a new modification time or inode) that is readable and fresh; then
it logs in again by itself. The simulator's tokens never expire.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from pathlib import Path

from common.feed.streamer import (
    REFRESH_TOKEN_LIFETIME,
    REFRESH_TOKEN_WARNING,
    TokenExpired,
    token_age,
    token_signature,
)
from common.feed.waiting import Idle


class TokenWatch:
    """The token file at `path`: checked before each login, and waited for after it expired."""

    def __init__(self, path: Path, logger: logging.Logger, *, simulated: bool, poll: float,
                 now: Callable[[], float] = time.time):
        self.path = path
        self.log = logger
        self.simulated = simulated
        self.poll = poll
        self.now = now

    def check(self) -> None:
        """Refuse to start on a token Schwab will refuse (TokenExpired); warn a day ahead."""
        if self.simulated:
            return
        age = token_age(self.path, self.now())
        if age >= REFRESH_TOKEN_LIFETIME:
            raise TokenExpired(f"the token file is {age / 86_400:.1f} days old; Schwab's refresh tokens last 7")
        if age >= REFRESH_TOKEN_LIFETIME - REFRESH_TOKEN_WARNING:
            self.log.warning("Schwab refresh token expires soon: run `make login` on this host",
                             extra={"hours_left": round((REFRESH_TOKEN_LIFETIME - age) / 3600, 1)})

    def expired(self, error: Exception) -> None:
        """Say once what a person must do."""
        self.log.error("Schwab refresh token expired: run `make login` on this host to create a new token file; "
                       "ingest waits for it and resumes by itself",
                       extra={"token_path": str(self.path), "reason": str(error) or repr(error)})

    async def wait_for_new(self, idle: Idle) -> bool:
        """Wait (idle, looking every `poll` seconds) for a new, fresh token file: True once there is one,
        False when a stop is requested first. A new file that cannot be read is logged, and waited past."""
        seen = token_signature(self.path)
        while not idle.stopping():
            await idle.wait(self.poll)
            current = token_signature(self.path)
            if current is None or current == seen:
                continue
            seen = current
            try:
                fresh = self.simulated or token_age(self.path, self.now()) < REFRESH_TOKEN_LIFETIME
            except (OSError, ValueError, KeyError) as unreadable:
                self.log.error("the new token file cannot be read; still waiting", extra={"reason": repr(unreadable)})
                continue
            if fresh:
                self.log.info("new token file found; logging in again", extra={"token_path": str(self.path)})
                return True
        return False
