"""The OAuth tokens the simulated Schwab honours, refuses and forgets.

Modelled far enough for schwab-py's own flows: a login code is redeemed once
for tokens, an access token lasts ACCESS_TOKEN_SECONDS, a refresh token is
refused once revoked (the `revoke_*` faults), as Schwab refuses an expired
one. Every set is bounded (TOKENS_KEPT), so months of refreshes stay small.
"""

from __future__ import annotations

import secrets
import threading
from collections import OrderedDict
from collections.abc import Iterable, Iterator
from typing import Any

ACCESS_TOKEN_SECONDS = 1800
#: Tokens (or login codes) each set remembers: at one new access token per
#: 30 minutes, over half a year's worth, in under 2 MB.
TOKENS_KEPT = 10_000


class RecentSet:
    """A set that forgets its least recently added members beyond `limit`, so months of tokens stay small."""

    def __init__(self, limit: int):
        self.limit = limit
        self._members: OrderedDict[str, None] = OrderedDict()

    def add(self, member: str) -> None:
        self._members[member] = None
        self._members.move_to_end(member)
        if len(self._members) > self.limit:
            self._members.popitem(last=False)

    def update(self, members: Iterable[str]) -> None:
        for member in list(members):
            self.add(member)

    def discard(self, member: str) -> None:
        self._members.pop(member, None)

    def __contains__(self, member: object) -> bool:
        return member in self._members

    def __iter__(self) -> Iterator[str]:
        return iter(self._members)

    def __len__(self) -> int:
        return len(self._members)


class Tokens:
    """Which access and refresh tokens the simulated Schwab still honours.

    Tokens it never issued are honoured (a token file written by hand or by
    `ensure_simulator_token`) until a fault revokes everything seen so far;
    a token first seen after that, such as a fresh login's, is good again.
    Each set remembers the `kept` tokens (or codes) added last: a client
    refreshes every 30 minutes, so only a token revoked more than `kept`
    tokens ago (months, at TOKENS_KEPT) could be honoured again.
    """

    def __init__(self, kept: int = TOKENS_KEPT) -> None:
        self.seen_access = RecentSet(kept)
        self.seen_refresh = RecentSet(kept)
        self.revoked = RecentSet(kept)
        self.codes = RecentSet(kept)
        self._lock = threading.Lock()

    def access_ok(self, token: str) -> bool:
        with self._lock:
            self.seen_access.add(token)
            return bool(token) and token not in self.revoked

    def refresh_ok(self, token: str) -> bool:
        with self._lock:
            self.seen_refresh.add(token)
            return token not in self.revoked

    def issue_code(self) -> str:
        with self._lock:
            code = f"SIM.code.{secrets.token_hex(8)}"
            self.codes.add(code)
            return code

    def redeem_code(self, code: str) -> bool:
        with self._lock:
            if code in self.codes:
                self.codes.discard(code)
                return True
            return False

    def issue(self, refresh_token: str | None = None) -> dict[str, Any]:
        """A token response, with a new refresh token unless one is being refreshed."""
        access = f"SIM.{secrets.token_hex(16)}"
        refresh = refresh_token or f"SIM.refresh.{secrets.token_hex(16)}"
        with self._lock:
            self.seen_access.add(access)
            self.seen_refresh.add(refresh)
        return {"expires_in": ACCESS_TOKEN_SECONDS, "token_type": "Bearer", "scope": "api",
                "refresh_token": refresh, "access_token": access, "id_token": f"SIM.id.{secrets.token_hex(8)}"}

    def revoke_access(self) -> None:
        with self._lock:
            self.revoked.update(self.seen_access)

    def revoke_refresh(self) -> None:
        with self._lock:
            self.revoked.update(self.seen_access)
            self.revoked.update(self.seen_refresh)
