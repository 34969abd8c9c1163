"""The OAuth tokens the simulated Schwab honours, refuses and forgets.

Modelled far enough for schwab-py's own flows: a login code is redeemed once
for tokens, an access token lasts ACCESS_TOKEN_SECONDS, a refresh token is
refused once revoked (the `expire_*` faults), as Schwab refuses an expired
one. A token the simulator never issued is refused too (NOT_ISSUED): a real
Schwab token sent here by mistake fails loudly instead of streaming SIMULATED
prices. Every set is bounded (TOKENS_KEPT), so months of refreshes stay small.
"""

from __future__ import annotations

import secrets
import threading
from collections import OrderedDict
from collections.abc import Iterable, Iterator
from typing import Any

from common.feed.simulated_oauth import NOT_ISSUED

ACCESS_TOKEN_SECONDS = 1800
#: Tokens (or login codes) each set remembers: at one new access token per
#: 30 minutes, over half a year's worth, in under 2 MB.
TOKENS_KEPT = 10_000
#: Schwab's refusal of an expired refresh token, here a revoked one: only a person's login helps.
REVOKED = "refresh_token_authentication_error"


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

    def clear(self) -> None:
        self._members.clear()

    def __contains__(self, member: object) -> bool:
        return member in self._members

    def __iter__(self) -> Iterator[str]:
        return iter(self._members)

    def __len__(self) -> int:
        return len(self._members)


class Tokens:
    """Which access and refresh tokens the simulated Schwab honours: those it issued and has not revoked.

    A revoked token is refused as Schwab refuses an expired one (REVOKED); one
    never issued, or forgotten, as NOT_ISSUED. Each set remembers the `kept`
    tokens (or codes) added last: a client refreshes every 30 minutes, so only
    a token issued more than `kept` tokens ago (months, at TOKENS_KEPT) is
    forgotten.
    """

    def __init__(self, kept: int = TOKENS_KEPT) -> None:
        self.issued_access = RecentSet(kept)
        self.issued_refresh = RecentSet(kept)
        self.revoked = RecentSet(kept)
        self.codes = RecentSet(kept)
        self._lock = threading.Lock()

    def access_ok(self, token: str) -> bool:
        with self._lock:
            return token in self.issued_access

    def refresh_refusal(self, token: str) -> str | None:
        """Why `token` cannot be refreshed (REVOKED or NOT_ISSUED); None when it can."""
        with self._lock:
            if token in self.issued_refresh:
                return None
            return REVOKED if token in self.revoked else NOT_ISSUED

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
            self.issued_access.add(access)
            self.issued_refresh.add(refresh)
        return {"expires_in": ACCESS_TOKEN_SECONDS, "token_type": "Bearer", "scope": "api",
                "refresh_token": refresh, "access_token": access, "id_token": f"SIM.id.{secrets.token_hex(8)}"}

    def revoke_access(self) -> None:
        with self._lock:
            self._revoke(self.issued_access)

    def revoke_refresh(self) -> None:
        with self._lock:
            self._revoke(self.issued_access)
            self._revoke(self.issued_refresh)

    def _revoke(self, issued: RecentSet) -> None:
        self.revoked.update(issued)
        issued.clear()
