"""Where market data enters: Schwab's `data` entries → typed, checked updates (pure).

A streamer message's `data` entries are decoded with msgspec straight from
the received text, each content item into the typed item its service declares
(`common/feed/services/`), then checked by that service. schwab-py keeps the
rest of the message: responses, notifications, heartbeats.

Every item is checked on its own, and a bad one becomes a `Rejection` (its
service, key, reason and an excerpt) without costing the other items of its
message; so does an item whose check fails in a way nobody foresaw
(`item_failed`): nothing an item holds escapes to drop the connection.

Each entry's own timestamp is checked first against the receive clock, since
every item time is checked against it: a frame stamped in year 9892 would
otherwise vouch for items of year 9892 (an indicator that takes the session as
closed, a bar gap that never ends). An entry stamped more than `FRAME_AHEAD`
after the clock is refused whole (`frame_in_future`): Schwab stamps a frame as
it sends it, and five minutes is more than any clock error NTP leaves, so what
lies beyond is damage, or this host's clock is behind (the log line says so).
A live entry (a Schwab connection) stamped more than `FRAME_BEHIND` before the
clock is refused too (`frame_too_old`): no socket holds a frame for a day. A
replay is not live: a recording is as old as it is, and only a frame after
the clock is refused in it.

What an item may hold is its service's business (`common/feed/services/`,
built from `common/feed/checks.py`): a plausible key, Schwab's types, prices,
sizes and times within bounds. What the merge completes from elsewhere is the
merge's: this module only says what an item carries.
"""

from __future__ import annotations

import json
from collections import OrderedDict
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

import msgspec

from common.feed.checks import Invalid
from common.feed.services import SERVICES

#: A frame stamped this far after the receive clock is damage (or this host's clock is behind): see above.
FRAME_AHEAD = 300_000
#: A live frame stamped this far before the receive clock is damage: no socket holds a frame for a day.
FRAME_BEHIND = 86_400_000
EXCERPT = 200


class _Entry(msgspec.Struct):
    """A `data` entry, its items left raw so each is decoded (and refused) on its own."""

    service: str
    timestamp: int
    content: list[msgspec.Raw]


class _ParsedEntry(msgspec.Struct):
    """A `data` entry as a lenient parser made it: its items are checked alike, from Python objects."""

    service: str
    timestamp: int
    content: list[Any]


@dataclass(frozen=True)
class Rejection:
    """An item (or an entry) that did not pass: `reason` is a short name to count by, `detail` a sentence."""

    service: str
    key: str
    reason: str
    detail: str
    excerpt: str


@dataclass
class Entry:
    """One `data` entry's checked items, with the frame's own timestamp (epoch ms)."""

    service: str
    frame_ms: int
    updates: list[Any] = field(default_factory=list)


@dataclass
class Decoded:
    entries: list[Entry] = field(default_factory=list)
    rejections: list[Rejection] = field(default_factory=list)


_entries = msgspec.json.Decoder(list[msgspec.Raw])
_entry = msgspec.json.Decoder(_Entry)
_items = {name: msgspec.json.Decoder(service.item) for name, service in SERVICES.items()}
_key_only = msgspec.json.Decoder(dict)


def decode(data: msgspec.Raw | list[Any], services: frozenset[str] = frozenset(SERVICES),
           received_ms: int | None = None, live: bool = False) -> Decoded:
    """A message's `data`: each entry's checked updates, and each item that failed, with why.

    `data` is the raw JSON list as received, or, for a message only a lenient
    parser could read (Schwab writing `NaN` where JSON has no such thing), the
    list that parser made: its items are checked exactly alike. `received_ms`
    is the receive clock (epoch ms) each entry's timestamp is held to, `live`
    whether it came from a Schwab connection rather than a recording; without
    a clock (a test of the items alone) a timestamp need only be positive.
    """
    decoded = Decoded()
    try:
        entries: list[Any] = _entries.decode(data) if isinstance(data, msgspec.Raw) else msgspec.convert(data, list)
    except msgspec.DecodeError as error:
        decoded.rejections.append(Rejection("", "", "entry_malformed", str(error), excerpt(data)))
        return decoded
    for raw in entries:
        try:
            entry = _entry.decode(raw) if isinstance(raw, msgspec.Raw) else msgspec.convert(raw, _ParsedEntry)
        except msgspec.DecodeError as error:
            decoded.rejections.append(Rejection("", "", "entry_malformed", str(error), excerpt(raw)))
            continue
        if entry.service not in services:
            decoded.rejections.append(Rejection(entry.service, "", "service_not_subscribed",
                                                f"data for {entry.service!r}, which nobody subscribed", excerpt(raw)))
            continue
        refused = frame_time_refused(entry.timestamp, received_ms, live)
        if refused is not None:
            decoded.rejections.append(Rejection(entry.service, "", *refused, excerpt(raw)))
            continue
        checked = Entry(entry.service, entry.timestamp)
        service, decoder = SERVICES[entry.service], _items[entry.service]
        for item in entry.content:
            try:
                update = decoder.decode(item) if isinstance(item, msgspec.Raw) else msgspec.convert(item, service.item)
                checked.updates.append(service.check(update, entry.timestamp))
            except msgspec.ValidationError as error:
                decoded.rejections.append(Rejection(entry.service, key_of(item), "bad_type", str(error), excerpt(item)))
            except msgspec.DecodeError as error:
                decoded.rejections.append(Rejection(entry.service, "", "item_malformed", str(error), excerpt(item)))
            except Invalid as error:
                decoded.rejections.append(Rejection(entry.service, key_of(item), error.reason, str(error),
                                                    excerpt(item)))
            except Exception as error:  # what nobody foresaw costs its item, never the message or the connection
                decoded.rejections.append(Rejection(entry.service, key_of(item), "item_failed", repr(error),
                                                    excerpt(item)))
        decoded.entries.append(checked)
    return decoded


def frame_time_refused(frame_ms: int, received_ms: int | None, live: bool) -> tuple[str, str] | None:
    """Why an entry's own timestamp cannot vouch for its items' times (reason, detail), or None when it can."""
    if frame_ms <= 0:
        return "frame_time", f"frame timestamp {frame_ms}"
    if received_ms is None:
        return None
    if frame_ms > received_ms + FRAME_AHEAD:
        return "frame_in_future", (
            f"frame timestamp {when(frame_ms)} is {(frame_ms - received_ms) / 60_000:.0f} minutes ahead of this "
            f"host's clock ({when(received_ms)}), more than {FRAME_AHEAD // 60_000}: a damaged frame, or, if every "
            f"frame says so, this host's clock is behind")
    if live and frame_ms < received_ms - FRAME_BEHIND:
        return "frame_too_old", (
            f"live frame timestamp {when(frame_ms)} is {(received_ms - frame_ms) / 3_600_000:.0f} hours behind this "
            f"host's clock ({when(received_ms)}), more than {FRAME_BEHIND // 3_600_000}: a damaged frame, or, if "
            f"every frame says so, this host's clock is ahead")
    return None


def when(ms: int) -> str:
    """An epoch-ms time for a log line: UTC ISO 8601, or the number itself where no calendar holds it."""
    try:
        return datetime.fromtimestamp(ms / 1000, timezone.utc).isoformat()
    except (OverflowError, OSError, ValueError):
        return f"{ms} ms after 1970"


def key_of(item: Any) -> str:
    """The item's key when it has a readable one, cut short: for counting and for the log only."""
    try:
        parsed = _key_only.decode(item) if isinstance(item, msgspec.Raw) else item
    except msgspec.DecodeError:
        return ""
    key = parsed.get("key") if isinstance(parsed, dict) else None
    return key[:40] if isinstance(key, str) else ""


def excerpt(raw: Any) -> str:
    """At most EXCERPT characters of what was received, for the log."""
    if isinstance(raw, msgspec.Raw):
        text = bytes(raw).decode(errors="replace")
    else:
        text = raw if isinstance(raw, str) else json.dumps(raw, default=repr)
    return text if len(text) <= EXCERPT else text[:EXCERPT] + "…"


class LogLimiter:
    """Says whether to log a (key, reason) now: at most once per `every` seconds each, in bounded memory.

    A flood of bad items, or of distinct bogus keys, must not flood the disk:
    past `most` pairs remembered, the oldest are forgotten (and may log again).
    """

    def __init__(self, every: float = 60.0, most: int = 10_000):
        self.every = every
        self.most = most
        self._last: OrderedDict[tuple[str, str], float] = OrderedDict()

    def __len__(self) -> int:
        return len(self._last)

    def allow(self, key: str, reason: str, now: float) -> bool:
        pair = (key, reason)
        last = self._last.get(pair)
        if last is not None and now - last < self.every:
            return False
        self._last[pair] = now
        self._last.move_to_end(pair)
        while len(self._last) > self.most:
            self._last.popitem(last=False)
        return True
