"""Keeping one Schwab streamer connection alive for months: the pure parts.

schwab-py never reconnects by itself, waits forever for an answer that never
comes, and its refresh token dies after 7 days. Ingest's connection loop
(`common/feed/connection.py`) is built from these pieces: why a connection
ended (`cause_of`), how long to wait before the next one (`Backoff`), an
answer in time to every command (`within`), whether the token file can still
work (`token_age`), and a JSON decoder that sees every frame first
(`CheckedDecoder`), for the watchdog, for frames schwab-py would otherwise
drop silently, and for the account's real-time entitlement in the LOGIN reply
(`entitlement`).
"""

from __future__ import annotations

import asyncio
import json
import logging
import random
import re
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import msgspec
from authlib.integrations.base_client.errors import OAuthError
from schwab.contrib.util import StreamJsonDecoder
from schwab.streaming import (
    UnexpectedResponse,
    UnexpectedResponseCode,
    UnparsableMessage,
)
from websockets.exceptions import (
    ConnectionClosedError,
    ConnectionClosedOK,
    InvalidHandshake,
)

#: Schwab's refresh tokens expire this long after the login that created them.
REFRESH_TOKEN_LIFETIME = 7 * 86_400.0
#: Warn this long before that, so someone can run `make login` in time.
REFRESH_TOKEN_WARNING = 86_400.0
KNOWN_FRAMES = frozenset({"data", "response", "notify"})
#: Logged content of a bad frame is cut to this many characters.
EXCERPT = 500

#: Schwab's streamer response codes this loop treats specially.
LOGIN_DENIED = 3
SERVICE_NOT_AVAILABLE = 11
CONNECTION_LIMIT = 12
SYMBOL_LIMIT = 19
STOP_STREAMING = 30


class Stalled(Exception):
    """Nothing arrived, not even a heartbeat, for the watchdog's whole period."""


class CommandTimeout(Exception):
    """A command schwab-py sent got no answer in time: it would have waited forever."""


async def within(timeout: float, what: str, command: Awaitable[Any]) -> Any:
    """Every streamer command gets an answer in time, or the connection is given up."""
    try:
        return await asyncio.wait_for(command, timeout)
    except TimeoutError:
        raise CommandTimeout(f"no answer to {what} within {timeout:g} s") from None


class StreamStopped(Exception):
    """Schwab announced the end of the stream (a notify with a non-zero code)."""

    def __init__(self, code: int, msg: str):
        super().__init__(f"Schwab stopped the stream: code {code}, {msg!r}")
        self.code = code


class TokenExpired(Exception):
    """The refresh token no longer works: a person must run `make login`."""


@dataclass(frozen=True)
class Cause:
    """Why a connection ended: a short name for metrics, a sentence for the log, the least wait before retrying."""

    name: str
    detail: str
    floor: float = 0.0


def response_code(error: UnexpectedResponseCode) -> tuple[int, str]:
    content = error.response["response"][0]["content"]
    return int(content.get("code", -1)), str(content.get("msg", ""))


def cause_of(error: BaseException, limit_backoff: float) -> Cause:
    """Classify how a connection ended; limits (codes 12 and 19) wait at least `limit_backoff`."""
    if isinstance(error, Stalled):
        return Cause("stall", str(error))
    if isinstance(error, CommandTimeout):
        return Cause("command_timeout", str(error))
    if isinstance(error, StreamStopped):
        return Cause("stop_streaming", str(error))
    if isinstance(error, ConnectionClosedOK):
        return Cause("closed", f"Schwab closed the connection cleanly ({error})")
    if isinstance(error, ConnectionClosedError):
        return Cause("dropped", f"the connection broke without a close ({error})")
    if isinstance(error, UnexpectedResponseCode):
        code, msg = response_code(error)
        if code == CONNECTION_LIMIT:
            return Cause("connection_limit", "Schwab allows one streamer connection per user and another one is "
                         f"open (code 12: {msg!r}); close the other program or wait", limit_backoff)
        if code == SYMBOL_LIMIT:
            return Cause("symbol_limit", f"Schwab refused a subscription over its symbol limit (code 19: {msg!r})",
                         limit_backoff)
        if code == LOGIN_DENIED:
            return Cause("login_refused", f"Schwab refused the login (code 3: {msg!r})")
        if code == SERVICE_NOT_AVAILABLE:
            return Cause("service_unavailable", f"Schwab says a service is not available (code 11: {msg!r})")
        return Cause(f"code_{code}", f"Schwab answered with code {code}: {msg!r}")
    if isinstance(error, UnexpectedResponse):
        return Cause("unexpected_response", str(error)[:EXCERPT])
    if isinstance(error, httpx.HTTPStatusError) and error.response.status_code == 401:
        return Cause("access_token_rejected", "Schwab rejected the access token before its expiry; refreshing it")
    if isinstance(error, (OSError, InvalidHandshake, httpx.TransportError)):
        return Cause("connect_failed", f"cannot reach Schwab: {error!r}")
    if isinstance(error, httpx.HTTPStatusError):
        return Cause("http_error", f"Schwab's API answered HTTP {error.response.status_code}")
    return Cause("error", repr(error)[:EXCERPT])


def is_token_expired(error: BaseException) -> bool:
    """A refresh the token endpoint refused (Schwab says `invalid_client`): only a new login helps."""
    return isinstance(error, (TokenExpired, OAuthError))


class Backoff:
    """Capped exponential backoff with ±20 % jitter: 1, 2, 4 … `maximum` seconds."""

    def __init__(self, minimum: float, maximum: float, rng: Callable[[], float] = random.random):
        self.minimum = minimum
        self.maximum = maximum
        self.rng = rng
        self.attempt = 0

    def next(self, floor: float = 0.0) -> float:
        delay = min(self.maximum, self.minimum * 2 ** self.attempt)
        self.attempt += 1
        return max(floor, delay * (0.8 + 0.4 * self.rng()))

    def reset(self) -> None:
        self.attempt = 0


def token_age(path: Path, now: float | None = None) -> float:
    """Seconds since the login that created the token file (schwab-py's creation_timestamp)."""
    wrapped = json.loads(path.read_text())
    return (time.time() if now is None else now) - float(wrapped["creation_timestamp"])


def token_signature(path: Path) -> tuple[int, int] | None:
    """What changes when someone writes a new token file; None while there is none."""
    try:
        stat = path.stat()
    except FileNotFoundError:
        return None
    return stat.st_mtime_ns, stat.st_ino


def excerpt(raw: Any) -> str:
    if isinstance(raw, (bytes, bytearray, memoryview)):
        raw = bytes(raw).decode(errors="replace")
    text = raw if isinstance(raw, str) else repr(raw)
    return text if len(text) <= EXCERPT else text[:EXCERPT] + "…"


class CheckedDecoder(StreamJsonDecoder):
    """schwab-py's JSON decoder, which sees every frame first: the watchdog's clock, the data, what to skip.

    Every frame (heartbeats included) moves `last_frame`. `data` never reaches
    schwab-py: it goes, raw, to `on_data`, which decodes and checks it at the
    edge (`common/feed/edge.py`), the moment it arrives, even while schwab-py waits
    for a command's answer. The rest of the message (responses, notifications)
    goes on to schwab-py. A frame of a kind schwab-py does not know is logged
    with its content and skipped. A notify carrying a non-zero code (Schwab's
    STOP_STREAMING) raises `StreamStopped`, which schwab-py lets through to
    the connection loop. Text that is not JSON raises json's error, which
    schwab-py turns into `UnparsableMessage`. `clock` is the watchdog's
    monotonic clock, so a test can stand in for it.
    """

    def __init__(self, on_data: Callable[[msgspec.Raw | list[Any]], None], logger: logging.Logger,
                 on_skip: Callable[[], None], clock: Callable[[], float] = time.monotonic,
                 on_login: Callable[[str | None], None] | None = None):
        self.on_data = on_data
        self.logger = logger
        self.on_skip = on_skip
        self.clock = clock
        self.on_login = on_login
        self.last_frame = clock()

    def decode_json_string(self, raw: str | bytes) -> dict[str, Any]:
        self.last_frame = self.clock()
        try:
            parts = _message.decode(raw)
        except msgspec.ValidationError:
            self._skip("frame is not a JSON object", raw)
            return {}
        except msgspec.DecodeError:
            parts = lenient(raw)  # NaN where JSON has none: every good item of it still counts
        unknown = parts.keys() - KNOWN_FRAMES
        if unknown:
            self._skip(f"unknown frame kind {sorted(unknown)}", raw)
        data = parts.pop("data", None)
        message = {kind: msgspec.json.decode(value) if isinstance(value, msgspec.Raw) else value
                   for kind, value in parts.items() if kind in KNOWN_FRAMES}
        if data is not None:
            self.on_data(data)
        if self.on_login is not None:
            for answer in message.get("response", ()):
                if isinstance(answer, dict) and answer.get("command") == "LOGIN":
                    content = answer.get("content") if isinstance(answer.get("content"), dict) else {}
                    if content.get("code") == 0:
                        self.on_login(entitlement(content.get("msg")))
        for notice in message.get("notify", ()):
            if not isinstance(notice, dict) or "heartbeat" in notice:
                continue
            content = notice.get("content") or {}
            if isinstance(content, dict) and content.get("code", 0) != 0:
                raise StreamStopped(int(content["code"]), str(content.get("msg", "")))
        return message

    def _skip(self, reason: str, content: Any) -> None:
        self.on_skip()
        self.logger.error("frame skipped", extra={"reason": reason, "content": excerpt(content)})


_message = msgspec.json.Decoder(dict[str, msgspec.Raw])


_STATUS = re.compile(r"(?:^|;)\s*status=([A-Za-z]{1,16})\s*(?:;|$)")


def entitlement(msg: Any) -> str | None:
    """The account's status in a successful LOGIN reply's message (`server=…;status=NP`): PN non-paying
    professional, NP non-professional, PP paying professional; None when the message carries none."""
    found = _STATUS.search(msg) if isinstance(msg, str) else None
    return found.group(1).upper() if found else None


def lenient(raw: str | bytes) -> dict[str, Any]:
    """What Python's json makes of a frame msgspec refused (it reads NaN and Infinity); json's error if nothing."""
    text = raw if isinstance(raw, str) else raw.decode(errors="replace")
    parsed = json.loads(text)
    if not isinstance(parsed, dict):
        raise json.JSONDecodeError("frame is not a JSON object", text, 0)
    return parsed


def unparsable(error: UnparsableMessage) -> str:
    return excerpt(error.raw_msg)
