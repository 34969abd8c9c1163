"""The journal: real files in tmp_path, injected clocks."""

from __future__ import annotations

import errno
import os
import random
import threading
import zlib
from pathlib import Path

import pytest

from common.transport import journal
from common.transport.journal import (
    Cursor,
    Dropped,
    JournalCorrupt,
    JournalFull,
    JournalWriter,
    Pruned,
    TornTail,
    prune,
    read,
    read_envelopes,
)
from common.transport.messages import Envelope, EquityTrade, encode
from tests.helpers.journal_frames import frame


def noise_frame(stream: str, epoch: int, seq: int) -> bytes:
    """An encoded envelope of fixed size that DEFLATE cannot shrink: segments roll at a known count."""
    return encode(Envelope(stream, epoch, seq, seq, [EquityTrade(random.Random(seq).randbytes(30).hex(), 1, 1.0, 1, 1,
                                                                 1, None, None, 1)]))


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def segments(directory: Path) -> list[Path]:
    return sorted(directory.glob("*.journal"))


def write(directory: Path, payloads: list[bytes], epoch: int = 1, **options) -> None:
    writer = JournalWriter(directory, "ingest", epoch, **options)
    for payload in payloads:
        writer.append(payload)
    writer.close()


def test_round_trip_across_segments_and_epochs(tmp_path: Path) -> None:
    first = [frame("ingest/trade/SPY", 100, seq) for seq in range(1, 201)]
    second = [frame("ingest/trade/SPY", 200, seq) for seq in range(1, 51)]
    write(tmp_path / "j", first, epoch=100, segment_bytes=512)
    write(tmp_path / "j", second, epoch=200, segment_bytes=512)

    assert list(read(tmp_path / "j")) == first + second
    names = [path.name for path in segments(tmp_path / "j")]
    assert len(names) > 10
    assert f"ingest-{100:020d}-000000.journal" in names and f"ingest-{200:020d}-000000.journal" in names
    assert all(path.stat().st_size <= 512 for path in segments(tmp_path / "j"))
    assert (tmp_path / "j").stat().st_mode & 0o777 == 0o700


def test_bytes_on_disk_counts_every_segment(tmp_path: Path) -> None:
    writer = JournalWriter(tmp_path, "ingest", 1, segment_bytes=256)
    for seq in range(1, 30):
        writer.append(frame("s", 1, seq))
    assert writer.bytes_on_disk == sum(path.stat().st_size for path in segments(tmp_path))
    writer.close()


def test_rolls_by_age(tmp_path: Path) -> None:
    clock = Clock()
    writer = JournalWriter(tmp_path, "ingest", 1, segment_seconds=10, clock=clock)
    for seq, now in enumerate((0, 5, 9.9, 10, 15, 25), start=1):
        clock.now = now
        writer.append(frame("s", 1, seq))
    writer.close()

    assert [len(list(journal._records(path, None))) for path in segments(tmp_path)] == [3, 2, 1]
    assert [envelope.seq for envelope in read_envelopes(tmp_path)] == [1, 2, 3, 4, 5, 6]


@pytest.mark.parametrize(
    "damage",
    [
        pytest.param(lambda path: os.truncate(path, path.stat().st_size - 3), id="truncated-mid-record"),
        pytest.param(lambda path: path.open("ab").write(b"\x05\x00\x00"), id="partial-header"),
        pytest.param(lambda path: path.open("ab").write(b"\xff\xff\xff\x7f\x01\x02\x03\x04abc"), id="absurd-length"),
        pytest.param(lambda path: path.open("ab").write(b"\x04\x00\x00\x00\x00\x00\x00\x00abcd"), id="bad-checksum"),
    ],
)
def test_torn_tail_is_reported_once_and_skipped(tmp_path: Path, damage) -> None:
    payloads = [frame("s", 1, seq) for seq in range(1, 11)]
    write(tmp_path, payloads)
    [path] = segments(tmp_path)
    size = path.stat().st_size
    damage(path)
    torn: list[TornTail] = []

    got = list(read(tmp_path, on_torn=torn.append))

    truncated = path.stat().st_size < size
    good = payloads[:-1] if truncated else payloads
    assert got == good
    offset = sum(8 + len(payload) for payload in good)
    assert torn == [TornTail(path, offset, path.stat().st_size - offset)]


def test_torn_tail_of_an_older_segment_is_reported_and_reading_goes_on(tmp_path: Path) -> None:
    payloads = [frame("s", 1, seq) for seq in range(1, 21)]
    write(tmp_path, payloads, segment_bytes=200)
    older = segments(tmp_path)[0]
    with older.open("ab") as file:
        file.write(b"\x09\x00")
    torn: list[TornTail] = []

    assert list(read(tmp_path, on_torn=torn.append)) == payloads
    assert [tail.segment for tail in torn] == [older]


@pytest.mark.parametrize("where", [12, 0], ids=["payload", "length"])
def test_damage_in_the_middle_raises_naming_the_segment(tmp_path: Path, where: int) -> None:
    payloads = [frame("s", 1, seq) for seq in range(1, 11)]
    write(tmp_path, payloads)
    [path] = segments(tmp_path)
    offset = 3 * (8 + len(payloads[0]))
    data = bytearray(path.read_bytes())
    data[offset + where] ^= 0x40
    path.write_bytes(bytes(data))

    with pytest.raises(JournalCorrupt, match=f"{path}.*offset {offset}"):
        list(read(tmp_path))


def test_read_envelopes_skips_what_is_committed_per_stream(tmp_path: Path) -> None:
    write(tmp_path, [frame(stream, 1, seq) for seq in range(1, 11) for stream in ("a", "b", "c")], epoch=1)
    write(tmp_path, [frame("a", 2, seq) for seq in range(1, 4)], epoch=2)

    got = [(e.stream, e.epoch, e.seq) for e in read_envelopes(tmp_path, after={"a": (1, 7), "b": (2, 0)})]

    expected = [(stream, 1, seq) for seq in range(1, 11) for stream in ("a", "c") if stream == "c" or seq > 7]
    assert got == expected + [("a", 2, 1), ("a", 2, 2), ("a", 2, 3)]
    assert len(list(read_envelopes(tmp_path))) == 33


def test_prune_deletes_only_old_fully_committed_segments(tmp_path: Path) -> None:
    epoch_one = [frame("a", 1, seq) for seq in range(1, 31)]
    epoch_one.insert(12, frame("c", 1, 1))
    write(tmp_path, epoch_one, epoch=1, segment_bytes=60)
    write(tmp_path, [frame("b", 2, 1)], epoch=2)
    paths = segments(tmp_path)
    contents = {path: [journal._head(payload) for payload, _ in journal._records(path, None)] for path in paths}
    now = 1_000_000.0
    for path in paths:
        os.utime(path, (now - 7200, now - 7200))
    os.utime(paths[0], (now - 10, now - 10))
    committed = {"a": (1, 20), "b": (2, 1)}

    deleted = prune(tmp_path, committed, retention_seconds=3600, now=now).deleted

    expected = [
        path for path in paths[1:-1] if all(head.stream == "a" and head.seq <= 20 for head in contents[path])
    ]
    assert len(expected) == 3 and deleted == expected
    assert paths[0].exists()  # committed, but younger than retention
    assert paths[-1].exists()  # the newest is never deleted, though committed and old
    assert any(head.stream == "c" for path in segments(tmp_path) for head in contents[path])  # "c" never committed

    everything = {"a": (1, 30), "b": (2, 1), "c": (1, 1)}
    assert prune(tmp_path, {}, retention_seconds=0, now=now + 1) == Pruned()
    rest = segments(tmp_path)[:-1]
    assert prune(tmp_path, everything, retention_seconds=0, now=now + 1) == Pruned(deleted=rest)
    assert segments(tmp_path) == [paths[-1]]


def test_over_the_cap_consumed_segments_go_first_then_the_oldest_unconsumed_with_an_alarm(tmp_path: Path) -> None:
    write(tmp_path, [noise_frame("a", 1, seq) for seq in range(1, 41)], epoch=1, segment_bytes=300)
    paths = segments(tmp_path)
    last = {path: [journal._head(payload).seq for payload, _ in journal._records(path, None)][-1] for path in paths}
    size = {path: path.stat().st_size for path in paths}
    assert len(paths) >= 8
    now = 1_000_000.0  # every segment younger than retention: only the cap deletes
    committed = {"a": (1, last[paths[2]])}  # the first three segments are consumed
    spans: journal.Spans = {}

    under = prune(tmp_path, committed, 3600, now=now, max_bytes=sum(size.values()), spans=spans)
    assert under == Pruned() and segments(tmp_path) == paths, "at the cap, nothing goes"
    assert set(spans) == set(paths[:-1]), "each rolled segment read once and remembered; never the newest"

    two_fewer = sum(size.values()) - size[paths[0]] - size[paths[1]]
    assert prune(tmp_path, committed, 3600, now=now, max_bytes=two_fewer, spans=spans) == Pruned(deleted=paths[:2]), \
        "consumed segments first, oldest first, whatever their age"

    pruned = prune(tmp_path, committed, 3600, now=now, max_bytes=sum(size[path] for path in paths[-3:]), spans=spans)
    assert pruned.deleted == [paths[2]]
    assert pruned.dropped == [Dropped(path, {"a": (1, last[path])}) for path in paths[3:-3]], \
        "then the oldest unconsumed, each named with the last frame it takes"
    assert segments(tmp_path) == paths[-3:] and set(spans) == set(paths[-3:-1])

    assert prune(tmp_path, {}, 3600, now=now, max_bytes=1, spans=spans).dropped[-1].segment == paths[-2]
    assert segments(tmp_path) == [paths[-1]], "the newest segment is never deleted, however small the cap"


def test_fsync_at_most_once_per_interval(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    clock = Clock()
    synced: list[float] = []
    real_fsync = os.fsync
    monkeypatch.setattr(os, "fsync", lambda fd: (synced.append(clock.now), real_fsync(fd)))
    writer = JournalWriter(tmp_path, "ingest", 1, fsync_interval=1.0, clock=clock)
    writer.append(frame("s", 1, 1))
    assert synced == [0.0]  # the directory, for the new segment's name
    for seq, now in enumerate((0.1, 0.5, 0.99, 1.0, 1.2, 1.9, 2.5, 2.6), start=2):
        clock.now = now
        writer.append(frame("s", 1, seq))
        if now in (1.0, 2.5):  # due: an fsync starts on the writer's thread; sync waits for it, adding none
            writer.sync()
    writer.sync()
    writer.sync()  # nothing new: no second fsync
    writer.close()
    assert synced == [0.0, 1.0, 2.5, 2.6]


def test_a_slow_fsync_does_not_hold_up_appends(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """On a busy disk one fsync can take hundreds of ms: appends go on meanwhile, and `sync` waits for it."""
    clock, release, started = Clock(), threading.Event(), threading.Event()
    real_fsync, slow_calls = os.fsync, []

    def slow_fsync(fd: int) -> None:
        if threading.current_thread() is not threading.main_thread():
            slow_calls.append(fd)
            started.set()
            assert release.wait(10)
        real_fsync(fd)

    monkeypatch.setattr(os, "fsync", slow_fsync)
    writer = JournalWriter(tmp_path, "ingest", 1, fsync_interval=1.0, clock=clock)
    writer.append(frame("s", 1, 1))
    clock.now = 1.0
    writer.append(frame("s", 1, 2))
    assert started.wait(5)
    for seq, now in enumerate((1.5, 2.0, 3.0), start=3):  # due again, but one is running: not queued behind
        clock.now = now
        writer.append(frame("s", 1, seq))
    assert len(slow_calls) == 1
    release.set()
    writer.close()
    assert [envelope.seq for envelope in read_envelopes(tmp_path)] == [1, 2, 3, 4, 5]


def test_a_failed_background_fsync_is_raised_by_the_next_sync(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    clock = Clock()
    errors = [OSError(errno.EIO, "I/O error"), OSError(errno.ENOSPC, "No space left on device")]

    def failing_fsync(fd: int) -> None:
        if threading.current_thread() is not threading.main_thread():
            raise errors.pop(0)

    monkeypatch.setattr(os, "fsync", failing_fsync)
    writer = JournalWriter(tmp_path, "ingest", 1, fsync_interval=1.0, clock=clock)
    writer.append(frame("s", 1, 1))
    clock.now = 1.0
    writer.append(frame("s", 1, 2))
    with pytest.raises(OSError) as failed:
        writer.sync()
    assert failed.value.errno == errno.EIO
    clock.now = 2.0
    writer.append(frame("s", 1, 3))
    with pytest.raises(JournalFull, match="is full"):
        writer.sync()
    writer.sync()  # what the failed fsyncs left is synced inline now
    writer.close()


def test_a_failed_write_that_cannot_be_undone_is_left_as_a_torn_tail(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    writer = JournalWriter(tmp_path, "ingest", 1)
    good = [frame("s", 1, seq) for seq in range(1, 4)]
    for payload in good:
        writer.append(payload)
    real_write = os.write
    calls = []

    def short_then_full(fd: int, data) -> int:
        calls.append(len(data))
        if len(calls) == 1:
            return real_write(fd, bytes(data)[:5])
        raise OSError(errno.ENOSPC, "No space left on device")

    def cannot_truncate(fd: int, length: int) -> None:
        raise OSError(errno.EIO, "Input/output error")

    monkeypatch.setattr(os, "write", short_then_full)
    monkeypatch.setattr(os, "ftruncate", cannot_truncate)
    with pytest.raises(JournalFull):
        writer.append(frame("s", 1, 4))
    monkeypatch.undo()
    later = [frame("s", 1, seq) for seq in range(4, 7)]
    for payload in later:
        writer.append(payload)
    writer.close()
    torn: list[TornTail] = []

    assert list(read(tmp_path, on_torn=torn.append)) == good + later
    assert len(segments(tmp_path)) == 2
    assert torn == [TornTail(segments(tmp_path)[0], sum(8 + len(p) for p in good), 5)]


def test_refuses_empty_and_absurd_payloads(tmp_path: Path) -> None:
    writer = JournalWriter(tmp_path, "ingest", 1)
    with pytest.raises(ValueError):
        writer.append(b"")
    writer.close()


def test_a_cursor_resumes_where_the_last_read_stopped(tmp_path: Path) -> None:
    writer = JournalWriter(tmp_path, "ingest", 1, segment_bytes=120)
    first = [bytes([i]) * 40 for i in range(5)]
    for payload in first:
        writer.append(payload)
    cursor = Cursor()
    assert list(read(tmp_path, cursor=cursor)) == first
    assert list(read(tmp_path, cursor=cursor)) == [], "nothing new: nothing read again"
    later = [bytes([9]) * 40, bytes([10]) * 40]
    for payload in later:
        writer.append(payload)
    assert list(read(tmp_path, cursor=cursor)) == later
    writer.close()
    segment = sorted(tmp_path.iterdir())[-1]
    with open(segment, "ab") as torn:
        torn.write(b"\x10\x00\x00\x00")  # a record being written: the cursor must not pass it
    assert list(read(tmp_path, cursor=cursor)) == []
    assert cursor.offset == segment.stat().st_size - 4


def trades_frame(seq: int, count: int = 20) -> bytes:
    """A realistic frame: a run of trades whose symbols, times and prices repeat nearly."""
    records = [EquityTrade("SPY", 1_764_000_000_000 + i, 500.01 + i / 100, 10, 1_000 + 10 * i, 10, 500.0, 500.02,
                           1_764_000_000_000_000_000 + i) for i in range(count)]
    return encode(Envelope("desk/ingest/trade", 1, seq, seq, records))


def test_a_frame_that_deflates_is_stored_deflated_and_read_back_exactly(tmp_path: Path) -> None:
    payloads = [trades_frame(seq) for seq in range(1, 6)] + [frame("s", 1, 6)]
    write(tmp_path, payloads)
    [path] = segments(tmp_path)

    assert list(read(tmp_path)) == payloads
    assert path.stat().st_size < 0.6 * sum(8 + len(payload) for payload in payloads)
    words = []
    with path.open("rb") as file:
        while header := file.read(8):
            word = int.from_bytes(header[:4], "little")
            words.append(word)
            file.seek(word & 0x7FFF_FFFF, os.SEEK_CUR)
    assert [word >> 31 for word in words] == [1, 1, 1, 1, 1, 0], "a frame DEFLATE cannot shrink is stored as it is"


def test_a_deflated_record_damaged_mid_segment_is_corruption(tmp_path: Path) -> None:
    write(tmp_path, [trades_frame(seq) for seq in range(1, 6)])
    [path] = segments(tmp_path)
    data = bytearray(path.read_bytes())
    first = int.from_bytes(data[:4], "little") & 0x7FFF_FFFF
    data[8 + first + 8 + 5] ^= 0x01  # inside the second record's payload
    path.write_bytes(bytes(data))

    with pytest.raises(JournalCorrupt, match=f"offset {8 + first}"):
        list(read(tmp_path))


def test_a_record_whose_checksum_holds_but_does_not_inflate_is_refused(tmp_path: Path) -> None:
    junk = b"\xff" * 16
    (tmp_path / journal.segment_name("ingest", 1, 0)).write_bytes(
        (len(junk) | 1 << 31).to_bytes(4, "little") + zlib.crc32(junk).to_bytes(4, "little") + junk)

    with pytest.raises(JournalCorrupt, match="does not inflate"):
        list(read(tmp_path))
