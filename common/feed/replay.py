"""Recordings of what Schwab sent, read back as fast as the pipeline takes them.

Peak throughput is measured without the simulator in the loop: ingest
records (`STREAM_RECORD`) every `data` payload it hands to the edge decoder,
and a replaying ingest (`STREAM_SOURCE=replay`, `STREAM_REPLAY`) feeds each
one to that same decoder, merge and frame coalescing, so a replay costs what
live data costs, minus the websocket.

On disk: UTF-8 text, one line per Schwab message that carried `data`, each
the `data` JSON list exactly as received, then `\\n` (JSON text holds no raw
newline, so a line is a payload). A payload only a lenient parser could read
(Schwab's `NaN`) is written as Python's json writes that list, `NaN` and all,
and read back through the same lenient path. No header, no index: `wc -l`
counts messages, `head` makes a shorter recording, `cat` joins two.

A recording grows until the disk is full: nothing rotates or prunes it, so
set `STREAM_RECORD` only while recording. Appends are buffered and flushed
every `FLUSH_EVERY` and on close; a process killed mid-line leaves a torn last
line, which `Recorder` trims before appending and `lines` skips (counted as
`Played.torn`). Edge checks of item times are relative to each frame's own
timestamp (`common/feed/edge.py`, `TIME_BEHIND`), and a replayed frame is
never refused for its age (a live one is, far from the receive clock), so a
recording replays alike however old it is; only a frame stamped after the
clock is refused. A recording marks no reconnect:
live ingest starts each connection's books afresh, a replay merges straight
on, so records may differ at such a seam.

A file that cannot be opened raises `RecordingError`, naming it; a failed
append (a full disk) is reported once to the `Recorder`'s `on_error`.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import msgspec

#: Buffered appends reach the file at least this often (and on close).
FLUSH_EVERY = 1.0
#: The replay loop gives the event loop a turn this often: flush timers, the actor's tick, control.
YIELD_EVERY = 0.005
_BUFFER = 1 << 20
_TAIL_BLOCK = 1 << 16
#: Tokens only the lenient path reads; a line without them goes to msgspec as it is.
_LENIENT = (b"NaN", b"Infinity")


class RecordingError(OSError):
    """A recording that cannot be opened, read or written; the message names the file."""


@dataclass(frozen=True)
class Played:
    """What a replay read: lines handed on, blank lines and a torn tail skipped, and how long it took."""

    lines: int
    torn: int
    seconds: float


class Recorder:
    """Appends every `data` payload it is given to a recording, one line each.

    A write that fails (a full disk) stops the recording, never the stream:
    `on_error` hears of it once and later payloads are not written.
    """

    def __init__(self, path: Path, on_error: Callable[[OSError], None]):
        self.path = path
        self.on_error = on_error
        try:
            trim_torn_tail(path)
            self._file: Any = path.open("ab", buffering=_BUFFER)
        except OSError as error:
            raise RecordingError(f"cannot record to {path}: {error.strerror or error}") from None
        self._flush_due = time.monotonic() + FLUSH_EVERY

    def write(self, data: msgspec.Raw | list[Any]) -> None:
        if self._file is None:
            return
        try:
            if isinstance(data, msgspec.Raw):
                self._file.write(data)
            else:
                self._file.write(json.dumps(data, allow_nan=True, separators=(",", ":")).encode())
            self._file.write(b"\n")
            now = time.monotonic()
            if now >= self._flush_due:
                self._file.flush()
                self._flush_due = now + FLUSH_EVERY
        except OSError as error:
            self._fail(error)

    def close(self) -> None:
        if self._file is None:
            return
        try:
            self._file.close()
        except OSError as error:
            self._fail(error)

    def _fail(self, error: OSError) -> None:
        file, self._file = self._file, None
        try:
            file.close()
        except OSError:
            pass  # the buffer cannot reach the disk either; the first error is the one reported
        self.on_error(error)


def trim_torn_tail(path: Path) -> None:
    """Cut what follows the last newline (a writer killed mid-line), so the next line starts on its own."""
    try:
        size = path.stat().st_size
    except FileNotFoundError:
        return
    if size == 0:
        return
    with path.open("r+b") as file:
        end = size
        while end > 0:
            start = max(0, end - _TAIL_BLOCK)
            file.seek(start)
            block = file.read(end - start)
            if end == size and block.endswith(b"\n"):
                return
            newline = block.rfind(b"\n")
            if newline >= 0:
                file.truncate(start + newline + 1)
                return
            end = start
        file.truncate(0)


def payload(line: bytes) -> msgspec.Raw | list[Any]:
    """What ingest handed the edge decoder when it recorded `line`: the raw list, or the lenient parser's list."""
    if any(token in line for token in _LENIENT):
        try:
            return json.loads(line)
        except ValueError:
            pass  # not even lenient JSON: the edge decoder refuses it by name, as it would have live
    return msgspec.Raw(line)


def lines(path: Path, torn: list[int]) -> Iterator[bytes]:
    """Every complete, non-blank line of a recording, without its newline; a torn last line adds 1 to `torn`."""
    try:
        file = path.open("rb", buffering=_BUFFER)
    except OSError as error:
        raise RecordingError(f"cannot replay {path}: {error.strerror or error}") from None
    with file:
        for line in file:
            if not line.endswith(b"\n"):
                torn[0] += 1
            elif line.strip():
                yield line[:-1]


async def play(path: Path, on_data: Callable[[msgspec.Raw | list[Any]], None], between: Callable[[], None],
               stopping: Callable[[], bool]) -> Played:
    """Hand every line of `path` to `on_data` as fast as it takes them; every YIELD_EVERY, a turn for the loop.

    `between` runs at each turn (the actor's tick, its control socket);
    a true `stopping()` ends the replay early.
    """
    started = time.monotonic()
    turn = started + YIELD_EVERY
    count, torn = 0, [0]
    for line in lines(path, torn):
        on_data(payload(line))
        count += 1
        now = time.monotonic()
        if now >= turn:
            await asyncio.sleep(0)
            between()
            if stopping():
                break
            turn = time.monotonic() + YIELD_EVERY
    return Played(count, torn[0], time.monotonic() - started)
