"""A damaged journal, as a failing disk or a power cut leaves it: every good record read, the damage reported once."""

from __future__ import annotations

import logging
import os
import zlib
from pathlib import Path

import pytest

from common.transport import journal
from common.transport.delivery import newest_sent
from common.transport.journal import Cursor, Damaged, JournalWriter, TornTail, read, read_envelopes
from common.transport.messages import Envelope, EquityTrade, encode
from tests.helpers.journal_damage import flip_bit, insert, record, record_offsets, segments
from tests.helpers.journal_frames import frame


def trades(seq: int) -> bytes:
    """A frame DEFLATE shrinks, so it is stored compressed (bit 31 of its length word set); its trades' times
    grow with `seq`."""
    records = [EquityTrade("SPY", 1_764_000_000_000 + 1000 * seq + i, 500.01 + i / 100, 10, 1_000 + 10 * i, 10, 500.0,
                           500.02, i) for i in range(20)]
    return encode(Envelope("d/ingest/trade", 1, seq, seq, records))


def journal_of(directory: Path, payloads: list[bytes], **options) -> list[bytes]:
    writer = JournalWriter(directory, "ingest", 1, **options)
    for payload in payloads:
        writer.append(payload)
    writer.close()
    return payloads


def read_all(directory: Path, cursor: Cursor | None = None) -> tuple[list[bytes], list[Damaged], list[TornTail]]:
    damaged: list[Damaged] = []
    torn: list[TornTail] = []
    got = list(read(directory, on_torn=torn.append, cursor=cursor, on_damaged=damaged.append))
    return got, damaged, torn


@pytest.mark.parametrize("make", [lambda seq: frame("d/ingest/trade", 1, seq, pad=seq % 7), trades],
                         ids=["stored", "deflated"])
@pytest.mark.parametrize("where", [12, 4, 0, 3], ids=["payload", "checksum", "length-low", "length-high"])
def test_a_damaged_record_is_reported_skipped_and_every_record_after_it_read(tmp_path: Path, make, where: int) -> None:
    payloads = journal_of(tmp_path, [make(seq) for seq in range(1, 11)])
    [path] = segments(tmp_path)
    starts = record_offsets(path)
    flip_bit(path, starts[3] + where)

    got, damaged, torn = read_all(tmp_path)

    assert got == payloads[:3] + payloads[4:], "nothing accepted is lost, nothing is invented"
    assert damaged == [Damaged(path, starts[3], starts[4] - starts[3], "its length or checksum does not hold")]
    assert torn == []


def test_the_first_record_of_a_segment_damaged(tmp_path: Path) -> None:
    payloads = journal_of(tmp_path, [frame("s", 1, seq) for seq in range(1, 6)])
    [path] = segments(tmp_path)
    flip_bit(path, 10)

    got, damaged, _ = read_all(tmp_path)

    assert got == payloads[1:]
    assert [(d.offset, d.length) for d in damaged] == [(0, record_offsets(path)[1])]


def test_bytes_no_writer_wrote_between_two_records_are_skipped(tmp_path: Path) -> None:
    payloads = journal_of(tmp_path, [frame("s", 1, seq) for seq in range(1, 11)])
    [path] = segments(tmp_path)
    at = record_offsets(path)[5]
    insert(path, at, os.urandom(100))

    got, damaged, _ = read_all(tmp_path)

    assert got == payloads
    assert [(d.offset, d.length) for d in damaged] == [(at, 100)]


def test_a_checksum_that_holds_by_chance_is_not_taken_unless_the_next_record_confirms_it(tmp_path: Path) -> None:
    payloads = journal_of(tmp_path, [frame("s", 1, seq) for seq in range(1, 11)])
    [path] = segments(tmp_path)
    starts = record_offsets(path)
    invented = record(b"a frame nobody sent")
    insert(path, starts[4], invented + b"\xff" * 20)  # a good-looking record, then garbage
    flip_bit(path, starts[3] + 12)

    got, damaged, _ = read_all(tmp_path)

    assert b"a frame nobody sent" not in got
    assert got == payloads[:3] + payloads[4:]
    assert [(d.offset, d.length) for d in damaged] == [(starts[3], starts[4] - starts[3] + len(invented) + 20)]


def test_a_record_whose_checksum_holds_but_does_not_inflate_is_skipped_alone(tmp_path: Path) -> None:
    junk = b"\xff" * 16
    written = (len(junk) | 1 << 31).to_bytes(4, "little") + zlib.crc32(junk).to_bytes(4, "little") + junk
    path = tmp_path / journal.segment_name("ingest", 1, 0)
    path.write_bytes(record(b"first") + written + record(b"second"))

    got, damaged, _ = read_all(tmp_path)

    assert got == [b"first", b"second"]
    assert len(damaged) == 1 and (damaged[0].offset, damaged[0].length) == (13, len(written))
    assert "does not inflate" in damaged[0].reason


def test_damage_then_a_torn_tail_each_reported_once(tmp_path: Path) -> None:
    payloads = journal_of(tmp_path, [frame("s", 1, seq) for seq in range(1, 11)])
    [path] = segments(tmp_path)
    starts = record_offsets(path)
    flip_bit(path, starts[2] + 12)
    os.truncate(path, path.stat().st_size - 3)

    got, damaged, torn = read_all(tmp_path)

    assert got == payloads[:2] + payloads[3:9]
    assert [d.offset for d in damaged] == [starts[2]]
    assert torn == [TornTail(path, starts[9], path.stat().st_size - starts[9])]


def test_damage_in_an_older_segment_leaves_its_later_records_and_the_next_segments_read(tmp_path: Path) -> None:
    payloads = journal_of(tmp_path, [frame("s", 1, seq) for seq in range(1, 31)], segment_bytes=100)
    older = segments(tmp_path)[0]
    assert len(segments(tmp_path)) > 2 and len(record_offsets(older)) > 3
    flip_bit(older, record_offsets(older)[1] + 12)

    got, damaged, _ = read_all(tmp_path)

    assert got == payloads[:1] + payloads[2:]
    assert [d.segment for d in damaged] == [older]


def test_past_the_resync_window_the_rest_of_the_segment_is_a_torn_tail_and_the_next_segment_is_read(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    payloads = journal_of(tmp_path, [frame("s", 1, seq) for seq in range(1, 31)], segment_bytes=100)
    older = segments(tmp_path)[0]
    starts = record_offsets(older)
    flip_bit(older, starts[1] + 12)
    monkeypatch.setattr(journal, "RESYNC_BYTES", 4)

    got, damaged, torn = read_all(tmp_path)

    assert got == payloads[:1] + payloads[len(starts):]
    assert damaged == [] and torn == [TornTail(older, starts[1], older.stat().st_size - starts[1])]


def test_a_cursor_passes_damage_once_and_reads_on_from_there(tmp_path: Path) -> None:
    writer = JournalWriter(tmp_path, "ingest", 1)
    first = [frame("s", 1, seq) for seq in range(1, 6)]
    for payload in first:
        writer.append(payload)
    [path] = segments(tmp_path)
    flip_bit(path, record_offsets(path)[2] + 12)
    cursor = Cursor()

    got, damaged, _ = read_all(tmp_path, cursor)
    assert got == first[:2] + first[3:] and len(damaged) == 1

    later = [frame("s", 1, seq) for seq in range(6, 8)]
    for payload in later:
        writer.append(payload)
    writer.close()
    assert read_all(tmp_path, cursor) == (later, [], []), "the damage is behind the cursor: not read or said again"


def test_envelopes_are_read_past_damage(tmp_path: Path) -> None:
    journal_of(tmp_path, [frame("s", 1, seq) for seq in range(1, 6)])
    [path] = segments(tmp_path)
    flip_bit(path, record_offsets(path)[1] + 12)
    damaged: list[Damaged] = []

    assert [envelope.seq for envelope in read_envelopes(tmp_path, on_damaged=damaged.append)] == [1, 3, 4, 5]
    assert len(damaged) == 1


def test_what_a_journal_says_was_sent_is_read_past_damage_and_the_damage_logged(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    journal_of(tmp_path, [trades(seq) for seq in range(1, 6)])
    [path] = segments(tmp_path)
    starts = record_offsets(path)
    flip_bit(path, starts[3] + 12)

    with caplog.at_level(logging.ERROR):
        newest = newest_sent(tmp_path, lambda trade: ("SPY", (trade.trade_time_ms,)))

    assert newest == {"SPY": (1_764_000_000_000 + 5000 + 19,)}, "the newest frame, after the damaged one"
    [line] = [entry for entry in caplog.records if "damaged" in entry.getMessage()]
    assert (line.segment, line.offset, line.skipped_bytes) == (str(path), starts[3], starts[4] - starts[3])
