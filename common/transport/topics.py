"""What a stream is called on the bus, in journals and in offsets: `{deployment}/{publisher}/{kind}`.

`kind` is the record's msgspec tag (`common/transport/messages.py`), so a
frame's records name their own stream: a publisher is handed records, never
a kind to spell. The deployment name keeps the streams, offsets and journals
of several deployments apart when they write into one database (one per
Schwab login: Schwab streams at most 500 keys per login). Which record goes
to which stream, journal and table is the registry's to say
(`common/streams.py`); transport only names.
"""

from __future__ import annotations

from collections.abc import Sequence

import msgspec


def stream(deployment: str, publisher: str, kind: str) -> str:
    return f"{deployment}/{publisher}/{kind}"


def publisher_of(name: str) -> str:
    """The publisher of stream `name` (`{deployment}/{publisher}/{kind}`)."""
    return name.split("/", 2)[1]


def tag(record: type[msgspec.Struct]) -> str:
    """A record type's kind on the bus: its msgspec tag. A struct without one is no kind of frame: TypeError."""
    kind = record.__struct_config__.tag
    if not isinstance(kind, str):
        raise TypeError(f"{record.__name__} has no msgspec tag, so no frame can carry it")
    return kind


def kind_of(records: Sequence[msgspec.Struct]) -> str:
    """The kind of a frame of `records`: their type's tag. A frame is of one kind, so they must all be of one type
    (TypeError), and there must be one (ValueError: an empty frame names no stream)."""
    types = set(map(type, records))
    if not types:
        raise ValueError("a frame of no records has no kind: send at least one")
    if len(types) > 1:
        mixed = ", ".join(sorted(record_type.__name__ for record_type in types))
        raise TypeError(f"a frame carries records of one type, not of {mixed}: send one frame per type")
    return tag(types.pop())
