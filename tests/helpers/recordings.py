"""Ingest's frame publishing without a bus: what it would send, kept per kind, for the replay tests."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from common.feed.frames import FramePublisher
from common.feed.replay import Played, Recorder, play
from common.observe.stats import ActorStats
from common.transport.topics import kind_of


class KeptFrames:
    """Stands in for ingest's bus publisher: every frame it is asked to send, in order, with the kind a publisher
    names it by (refusing, as one does, a frame of no records or of several types)."""

    def __init__(self) -> None:
        self.frames: list[tuple[str, list[Any]]] = []

    def send(self, records: Sequence[Any]) -> int:
        self.frames.append((kind_of(records), list(records)))
        return len(self.frames)

    def records(self, kind: str) -> list[Any]:
        return [record for sent, records in self.frames if sent == kind for record in records]


def frame_publisher(kept: KeptFrames, recorder: Recorder | None = None) -> FramePublisher:
    """Ingest's FramePublisher, as `run` builds it, sending into `kept`. Call it with an event loop running."""
    stats, logger = ActorStats("ingest", interval=0), logging.getLogger("test.ingest")
    return FramePublisher(kept, stats, logger, recorder=recorder)  # type: ignore[arg-type]


async def replayed(path: Path) -> tuple[KeptFrames, Played, dict[str, int]]:
    """What a replaying ingest sends for the recording at `path` (the same `play` and FramePublisher), what it
    read, and the items it refused by reason."""
    kept = KeptFrames()
    frames = frame_publisher(kept)
    played = await play(path, frames.on_data, lambda: None, lambda: False)
    frames.flush()
    return kept, played, frames.stats.rejections
