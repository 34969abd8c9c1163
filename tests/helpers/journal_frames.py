"""Journal records for tests: encoded envelopes of known streams and sequence numbers."""

from __future__ import annotations

from common.transport.messages import Envelope, encode


def frame(stream: str, epoch: int, seq: int, pad: int = 0) -> bytes:
    """An encoded envelope; `pad` lengthens its stream name to vary the size."""
    return encode(Envelope(stream + "x" * pad, epoch, seq, seq, []))
