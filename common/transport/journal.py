"""An append-only journal of every bus frame a publisher sends, read to replay what the bus dropped.

ZeroMQ PUB/SUB may drop frames, so a publisher of stored data appends each
encoded frame here before sending it; a consumer replays the journal after
the (stream, epoch, seq) it committed (the ZeroMQ guide's Clone pattern, a
kdb+ tickerplant log).

On disk: segment files `{publisher}-{epoch:020d}-{index:06d}.journal`, read
in (epoch, index) order, each a run of records

    length  u32 little-endian   bits 0-30: stored payload size, 1 .. 64 MiB;
                                bit 31: the payload is DEFLATEd
    crc     u32 little-endian   zlib.crc32(stored payload)
    payload bytes               one msgpack `Envelope`, or its raw DEFLATE
                                (RFC 1951, no zlib header) when bit 31 is set

with no file header. A frame is DEFLATEd (level 1, a 4 KiB window) when that
makes it smaller, which roughly halves the journal: field values repeat from
record to record (symbols, times, prices near each other). Each record is
compressed alone, so any record can still be read, skipped and resynced on
by itself; segments of older versions (bit 31 never set) read unchanged.

Records are written unbuffered (one `os.write` on an
O_APPEND fd), so a reader in another process sees each one at once; fsync
only bounds what a power cut can take, and runs on a thread of its own: on
a busy disk one fsync can take hundreds of milliseconds, which inline would
hold up every frame behind it.

Damage is reported and read past, so that it never becomes a crash loop (a
restarted reader would meet it again). A crash mid-write leaves a torn last
record: no good record follows it, and readers report it (`TornTail`) and
go on to the next segment. A bad record with good ones after it (a failing
disk, bytes no writer wrote) goes to the reader's `on_damaged` (`Damaged`:
the segment, the offset, how many bytes were skipped, why) and reading
resumes at the next good record: frames read before it are kept, and
nothing in the damage is taken for a frame. A reader with no `on_damaged`
gets JournalCorrupt instead (`prune` keeps such a segment).

Resynchronising needs no marker in the format. After a bad record, whose
length word may itself be damaged, the reader tries each later offset for
a record whose checksum holds and whose end the next record (or the
segment's end) confirms, so a checksum that holds by chance (one offset in
2**32) is not taken for a frame. It tries only offsets within RESYNC_BYTES
of the damage and records that end there, which bounds what one damage
costs in checksums (lengths read from damage are random, up to 64 MiB);
having found none, it calls the rest of the segment a torn tail and goes on
to the next segment, which always starts with a record. Frames are a few
KiB, so this gives up a segment's rest only to damage (or a frame just
after it) longer than the window. A record whose checksum holds but which does not inflate was
written so: it alone is skipped.
"""

from __future__ import annotations

import errno
import os
import struct
import time
import zlib
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO, NoReturn

import msgspec

from common.durable import fsync_directory
from common.transport.messages import Envelope, Position, decode_envelope

_HEADER = struct.Struct("<II")
#: A larger length can only be damage: never allocate for it.
MAX_RECORD = 64 << 20
_DEFLATED = 1 << 31
#: Level 1 with a 4 KiB window and little memory: half the bytes of an average frame for ~10 µs.
_LEVEL, _WINDOW_BITS, _MEMORY_LEVEL = 1, 12, 4
#: How far past a bad record a reader looks for a good one (which must end within that reach) before calling the
#: rest of the segment a torn tail.
RESYNC_BYTES = 1 << 20
_SUFFIX = ".journal"
_FULL = (errno.ENOSPC, errno.EDQUOT)


class JournalFull(OSError):
    """The journal's disk (or quota) is full: frames are not journaled until space is freed."""


class JournalCorrupt(ValueError):
    """A damaged record with good ones after it, met by a reader that gave no `on_damaged` to report it to."""


def _deflate(payload: bytes) -> bytes:
    packer = zlib.compressobj(_LEVEL, zlib.DEFLATED, -_WINDOW_BITS, _MEMORY_LEVEL)
    return packer.compress(payload) + packer.flush()


def _stored(payload: bytes) -> tuple[bytes, int]:
    """(the bytes to store, the length word's flag): DEFLATEd only where that is smaller."""
    packed = _deflate(payload)
    return (packed, _DEFLATED) if len(packed) < len(payload) else (payload, 0)


@dataclass(frozen=True)
class TornTail:
    """The bytes after a segment's last good record (a crash mid-write), which reading ignored."""

    segment: Path
    offset: int
    length: int


#: Why a record is damaged, when its checksum or length does not hold (`Damaged.reason`).
_BAD_RECORD = "its length or checksum does not hold"


@dataclass(frozen=True)
class Damaged:
    """A damaged record that reading skipped: `length` bytes from `offset`, up to the next good record."""

    segment: Path
    offset: int
    length: int
    reason: str

    def __str__(self) -> str:
        return (f"journal segment {self.segment}: the record at offset {self.offset} is damaged ({self.reason}); "
                f"the next good record starts {self.length} bytes on")


class _Head(msgspec.Struct, array_like=True):
    """An Envelope's leading fields: enough to skip a frame without decoding its records."""

    stream: str
    epoch: int
    seq: int


_head = msgspec.msgpack.Decoder(_Head).decode


def segment_name(publisher: str, epoch: int, index: int) -> str:
    return f"{publisher}-{epoch:020d}-{index:06d}{_SUFFIX}"


class JournalWriter:
    """Appends one publisher epoch's frames, rolling segments by size and age.

    Each epoch starts a segment of its own, so a new run never appends to a
    file an older run may have left torn. Every `fsync_interval` an append
    starts an fsync of the segment on the writer's thread and returns at
    once; one still running is not queued behind (the next append after it
    starts the next). `sync` and `close` wait for it, and its error comes
    out of the next append or sync.
    """

    def __init__(
        self,
        directory: Path,
        publisher: str,
        epoch: int,
        *,
        segment_bytes: int = 64 << 20,
        segment_seconds: float = 3600.0,
        fsync_interval: float = 1.0,
        clock: Callable[[], float] = time.monotonic,
    ):
        self.directory = Path(directory)
        self.publisher = publisher
        self.epoch = epoch
        self.segment_bytes = segment_bytes
        self.segment_seconds = segment_seconds
        self.fsync_interval = fsync_interval
        self.clock = clock
        existing = [index for e, index, _ in _segments(self.directory) if e == epoch]
        self._index = max(existing, default=-1) + 1
        self._fd: int | None = None
        self._size = 0
        self._opened = 0.0
        self._synced = 0.0
        self._dirty = False
        self._syncer: ThreadPoolExecutor | None = None
        self._syncing: Future[None] | None = None

    def append(self, payload: bytes) -> None:
        """Journal one frame; raises JournalFull (having written nothing readable) when the disk is full."""
        if not 0 < len(payload) <= MAX_RECORD:
            raise ValueError(f"journal payload of {len(payload)} bytes: must be 1 .. {MAX_RECORD}")
        stored, deflated = _stored(payload)
        record = _HEADER.pack(len(stored) | deflated, zlib.crc32(stored)) + stored
        now = self.clock()
        if self._fd is None or now - self._opened >= self.segment_seconds or (
            self._size and self._size + len(record) > self.segment_bytes
        ):
            self._roll(now)
        try:
            written = os.write(self._fd, record)
        except OSError as error:
            self._undo(error)
        if written != len(record):
            self._finish(record, written)
        self._size += len(record)
        self._dirty = True
        if now - self._synced >= self.fsync_interval:
            self._sync_behind(now)

    def sync(self) -> None:
        """Make everything appended so far durable."""
        self._collect(wait=True)
        if self._fd is not None and self._dirty:
            self._fsync(self.clock())

    def close(self) -> None:
        try:
            self._close_segment()
        finally:
            if self._syncer is not None:
                self._syncer.shutdown(wait=True)
                self._syncer = None

    def _close_segment(self) -> None:
        if self._fd is not None:
            try:
                self.sync()
            finally:
                os.close(self._fd)
                self._fd = None

    @property
    def bytes_on_disk(self) -> int:
        """The size of every segment in the directory, all epochs."""
        return sum(_size(path) for _, _, path in _segments(self.directory))

    def _roll(self, now: float) -> None:
        self._close_segment()
        path = self.directory / segment_name(self.publisher, self.epoch, self._index)
        self._index += 1
        try:
            self.directory.mkdir(mode=0o700, parents=True, exist_ok=True)
            self._fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_APPEND | os.O_CLOEXEC, 0o600)
            self._size = 0
            self._opened = self._synced = now
            self._dirty = False
            fsync_directory(self.directory)  # the new file's name must survive a power cut too
        except OSError as error:
            self._raise(error)

    def _finish(self, record: bytes, written: int) -> None:
        """Complete a short write (the disk filling up), or undo it."""
        view = memoryview(record)
        while written < len(record):
            try:
                done = os.write(self._fd, view[written:])
            except OSError as error:
                self._undo(error)
            if done == 0:
                self._undo(OSError(errno.ENOSPC, os.strerror(errno.ENOSPC)))
            written += done

    def _undo(self, error: OSError) -> NoReturn:
        """Cut a failed record off the segment and raise; if that fails too, never write after it.

        Left behind, the partial record stays the segment's torn tail (which
        readers skip) only while nothing is appended after it: so the next
        append starts a new segment.
        """
        try:
            os.ftruncate(self._fd, self._size)
        except OSError:
            os.close(self._fd)
            self._fd = None
        self._raise(error)

    def _sync_behind(self, now: float) -> None:
        """Start an fsync of what is appended so far on the writer's thread, unless one is still running."""
        if not self._collect(wait=False):
            return
        if self._syncer is None:
            self._syncer = ThreadPoolExecutor(max_workers=1, thread_name_prefix=f"journal-{self.publisher}")
        duplicate = os.dup(self._fd)  # its own descriptor: a roll may close the segment's meanwhile
        self._syncing = self._syncer.submit(_fsync_and_close, duplicate)
        self._synced = now
        self._dirty = False

    def _collect(self, wait: bool) -> bool:
        """Is no fsync running now (having waited for it with `wait`)? Raises the error of one that failed."""
        running = self._syncing
        if running is None:
            return True
        if not wait and not running.done():
            return False
        self._syncing = None
        try:
            running.result()
        except OSError as error:
            self._dirty = True
            self._raise(error)
        return True

    def _fsync(self, now: float) -> None:
        try:
            os.fsync(self._fd)
        except OSError as error:
            self._raise(error)
        self._synced = now
        self._dirty = False

    def _raise(self, error: OSError) -> NoReturn:
        """Re-raise `error`, as JournalFull (saying where and what to do) when the disk is full."""
        if error.errno not in _FULL:
            raise error
        raise JournalFull(
            error.errno,
            f"journal directory {self.directory} is full ({os.strerror(error.errno)}): free space on its disk, "
            "lower JOURNAL_RETENTION or point DATA_DIR at a larger disk; frames are sent but not journaled until then",
        ) from error


def _fsync_and_close(fd: int) -> None:
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _segments(directory: Path) -> list[tuple[int, int, Path]]:
    """(epoch, index, path) of every segment, in append order."""
    found = []
    try:
        entries = os.scandir(directory)
    except FileNotFoundError:
        return []
    with entries:
        for entry in entries:
            parts = entry.name[: -len(_SUFFIX)].rsplit("-", 2)
            if entry.name.endswith(_SUFFIX) and len(parts) == 3 and parts[1].isdigit() and parts[2].isdigit():
                found.append((int(parts[1]), int(parts[2]), Path(entry.path)))
    return sorted(found)


@dataclass
class Cursor:
    """Where a reader stopped: the segment (epoch, index) and the byte after its last good record.

    A reader that keeps its cursor resumes there instead of rereading the
    journal from its first segment; it only ever moves past good records,
    so a torn or half-written tail is read again next time.
    """

    segment: tuple[int, int] = (0, 0)
    offset: int = 0


def _records(
    path: Path,
    on_torn: Callable[[TornTail], None] | None,
    start: int = 0,
    on_damaged: Callable[[Damaged], None] | None = None,
) -> Iterator[tuple[bytes, int]]:
    """Every good payload of one segment from `start`, with the offset after it, as far as it extended when opened.

    A damaged record goes to `on_damaged` and reading resumes at the next good one (with no `on_damaged`, it
    raises JournalCorrupt); a torn tail goes to `on_torn`.
    """
    with open(path, "rb") as file:
        end = os.fstat(file.fileno()).st_size
        offset = start
        file.seek(start)
        while offset < end:
            found = _record_at(file, offset, end)
            if found is None:
                resumed = _resync(file, offset, end)
                if resumed is None:
                    if on_torn is not None:
                        on_torn(TornTail(path, offset, end - offset))
                    return
                damage = Damaged(path, offset, resumed - offset, _BAD_RECORD)
            else:
                word, stored = found
                after = offset + _HEADER.size + len(stored)
                try:
                    payload = zlib.decompress(stored, -15) if word & _DEFLATED else stored
                except zlib.error as error:  # its checksum held: written so, not damaged since; its length is sound
                    damage = Damaged(path, offset, after - offset,
                                     f"its checksum holds but it does not inflate: {error}")
                else:
                    offset = after
                    yield payload, offset
                    continue
            if on_damaged is None:
                raise JournalCorrupt(str(damage))
            on_damaged(damage)
            offset += damage.length
            file.seek(offset)


def _record_at(file: BinaryIO, offset: int, end: int) -> tuple[int, bytes] | None:
    """(length word, stored payload) of the record at `offset`, where `file` is; None unless it fits the segment
    and its checksum holds."""
    header = file.read(_HEADER.size)
    if len(header) < _HEADER.size:
        return None
    word, crc = _HEADER.unpack(header)
    if not _fits(word, offset, end):
        return None
    stored = file.read(word & ~_DEFLATED)
    return (word, stored) if len(stored) == word & ~_DEFLATED and zlib.crc32(stored) == crc else None


def _fits(word: int, offset: int, end: int) -> bool:
    """Could a record with length word `word` start at `offset`, by its length alone?"""
    length = word & ~_DEFLATED
    return 0 < length <= MAX_RECORD and offset + _HEADER.size + length <= end


def _resync(file: BinaryIO, bad: int, end: int) -> int | None:
    """Where the first good record after the bad one at `bad` starts (the module docstring says how it is
    found), or None: no good record follows within RESYNC_BYTES, and the rest is a torn tail."""
    first = bad + 1
    file.seek(first)
    window = file.read(min(end - first, RESYNC_BYTES + _HEADER.size))
    for start in range(len(window) - _HEADER.size + 1):
        word, _ = _HEADER.unpack_from(window, start)
        candidate = first + start
        after = candidate + _HEADER.size + (word & ~_DEFLATED)
        # Cheap tests first: a length that fits the window, and a plausible header after it; checksums last.
        if not _fits(word, candidate, min(end, first + len(window))):
            continue
        if after < end:
            file.seek(after)
            following = file.read(_HEADER.size)
            if len(following) < _HEADER.size or not _fits(_HEADER.unpack(following)[0], after, end):
                continue
        file.seek(candidate)
        if _record_at(file, candidate, end) is not None and (
                after == end or _record_at(file, after, end) is not None):
            return candidate
    return None


def read(
    directory: Path,
    on_torn: Callable[[TornTail], None] | None = None,
    cursor: Cursor | None = None,
    on_damaged: Callable[[Damaged], None] | None = None,
) -> Iterator[bytes]:
    """Every journaled payload in append order (from `cursor`, which it advances).

    Torn tails go to `on_torn`; a damaged record with good ones after it
    goes to `on_damaged` and is read past, or, with no `on_damaged`,
    raises JournalCorrupt. A cursor passes damage with the good record
    after it, so each reader reports a damage once.
    """
    cursor = cursor or Cursor()
    for epoch, index, path in _segments(directory):
        if (epoch, index) < cursor.segment:
            continue
        start = cursor.offset if (epoch, index) == cursor.segment else 0
        for payload, after in _records(path, on_torn, start, on_damaged):
            cursor.segment, cursor.offset = (epoch, index), after
            yield payload


def read_envelopes(
    directory: Path,
    after: dict[str, Position] | None = None,
    on_torn: Callable[[TornTail], None] | None = None,
    cursor: Cursor | None = None,
    on_damaged: Callable[[Damaged], None] | None = None,
) -> Iterator[Envelope]:
    """Journaled frames past `after` (per stream; a missing stream means all of it), in append order.

    Frames at or before their stream's position are skipped on their leading
    fields alone, so replaying a long, mostly committed journal stays cheap;
    with a `cursor`, what an earlier call read is not even opened again.
    """
    after = after or {}
    for payload in read(directory, on_torn=on_torn, cursor=cursor, on_damaged=on_damaged):
        if after:
            head = _head(payload)
            if (head.epoch, head.seq) <= after.get(head.stream, (0, 0)):
                continue
        yield decode_envelope(payload)


@dataclass(frozen=True)
class Dropped:
    """A segment deleted before its consumers passed it, to keep the journal under its cap: frames lost."""

    segment: Path
    #: Per stream with frames in it not yet committed: the last of them (everything after the stream's
    #: committed position up to this one is lost to its consumers).
    unconsumed: dict[str, Position]


@dataclass
class Pruned:
    """What one prune deleted: segments consumed, and segments dropped unconsumed (an alarm each)."""

    deleted: list[Path] = field(default_factory=list)
    dropped: list[Dropped] = field(default_factory=list)


#: Per rolled segment, each stream's last position in it. A rolled segment never changes, so a pruner
#: that keeps these reads it once, not once a minute.
Spans = dict[Path, dict[str, Position]]


def prune(
    directory: Path,
    committed: dict[str, Position],
    retention_seconds: float,
    now: float | None = None,
    follows: tuple[str, ...] = (),
    max_bytes: int | None = None,
    spans: Spans | None = None,
) -> Pruned:
    """Delete what the journal no longer needs, and what its cap cannot hold (README: the journal's cap).

    1. A segment whose every frame is committed goes once it is older than
       retention.
    2. While the journal is over `max_bytes`, committed segments go oldest
       first, whatever their age.
    3. While it is still over, the oldest segments not yet consumed go too,
       each returned in `dropped` for the caller to raise the alarm.

    With `follows` (stream prefixes some consumer reads), only frames of
    those streams must be committed: a stream nobody follows never keeps a
    segment alive; a followed stream absent from `committed` is unconsumed.
    The newest segment is never deleted (its writer may still be appending),
    nor one that cannot be read cleanly. `spans`, kept by the caller between
    calls, saves reading a segment again.
    """
    cutoff = (time.time() if now is None else now) - retention_seconds
    spans = {} if spans is None else spans
    pruned = Pruned()
    found = [path for _, _, path in _segments(directory)]
    for gone in spans.keys() - set(found):
        del spans[gone]
    sizes = {path: _size(path) for path in found}
    total = sum(sizes.values())
    candidates = []
    for path in found[:-1]:
        try:
            if path not in spans:
                spans[path] = _spans(path)
            unconsumed = _unconsumed(spans[path], committed, follows)
            if not unconsumed and path.stat().st_mtime < cutoff:
                _delete(path, spans)
                pruned.deleted.append(path)
                total -= sizes[path]
            else:
                candidates.append((path, unconsumed))
        except (FileNotFoundError, JournalCorrupt, msgspec.DecodeError):
            continue
    if max_bytes is None:
        return pruned
    consumed_first = sorted(candidates, key=lambda candidate: bool(candidate[1]))  # stable: oldest first in each
    for path, unconsumed in consumed_first:
        if total <= max_bytes:
            break
        if not path.exists():
            continue
        _delete(path, spans)
        total -= sizes[path]
        if unconsumed:
            pruned.dropped.append(Dropped(path, unconsumed))
        else:
            pruned.deleted.append(path)
    return pruned


def _size(path: Path) -> int:
    try:
        return path.stat().st_size
    except FileNotFoundError:
        return 0


def _delete(path: Path, spans: Spans) -> None:
    path.unlink(missing_ok=True)
    spans.pop(path, None)


def _spans(path: Path) -> dict[str, Position]:
    """Each stream's last position in one segment (a stream's frames are appended in order)."""
    last: dict[str, Position] = {}
    for payload, _ in _records(path, None):
        head = _head(payload)
        last[head.stream] = (head.epoch, head.seq)
    return last


def _unconsumed(last: dict[str, Position], committed: dict[str, Position], follows: tuple[str, ...]) -> dict[str, Position]:
    """Per stream of a segment not wholly committed, its last frame there (only followed ones, with `follows`)."""
    return {stream: position for stream, position in last.items()
            if (not follows or stream.startswith(follows)) and (stream not in committed or position > committed[stream])}
