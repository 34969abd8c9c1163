"""Journal segments damaged as a disk or a power cut damages them: a flipped bit, bytes gone, bytes that never were."""

from __future__ import annotations

import struct
import zlib
from pathlib import Path

#: A record's header: its length word and its checksum (common/transport/journal.py documents the framing).
HEADER = struct.Struct("<II")


def segments(directory: Path) -> list[Path]:
    return sorted(directory.glob("*.journal"))


def record_offsets(segment: Path) -> list[int]:
    """Where each record of an undamaged segment starts, by walking its length words."""
    data = segment.read_bytes()
    offsets, offset = [], 0
    while offset < len(data):
        offsets.append(offset)
        word, _ = HEADER.unpack_from(data, offset)
        offset += HEADER.size + (word & 0x7FFF_FFFF)
    return offsets


def flip_bit(segment: Path, at: int, bit: int = 6) -> None:
    """One bit of `segment` flipped at byte `at`, as a failing disk does."""
    data = bytearray(segment.read_bytes())
    data[at] ^= 1 << bit
    segment.write_bytes(bytes(data))


def insert(segment: Path, at: int, junk: bytes) -> None:
    """`junk` spliced in at byte `at`: bytes no writer ever wrote, between two records."""
    data = segment.read_bytes()
    segment.write_bytes(data[:at] + junk + data[at:])


def record(payload: bytes) -> bytes:
    """A stored record of `payload` whose checksum holds: what a writer would have written."""
    return HEADER.pack(len(payload), zlib.crc32(payload)) + payload
