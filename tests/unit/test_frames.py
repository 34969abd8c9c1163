"""Schwab messages to bus frames: a burst's records share one frame per kind; a bad item costs only itself."""

from __future__ import annotations

import asyncio
import json

import msgspec

from common.feed.frames import COALESCE_RECORDS
from tests.helpers.recordings import KeptFrames, frame_publisher
from tests.helpers.schwab_frames import raw_frames


def chart(*keys: str) -> msgspec.Raw:
    """A CHART_EQUITY message of the captured bar, once per key."""
    [message] = raw_frames()["CHART_EQUITY"]
    bar = message["content"][0]
    content = [{**bar, "key": key} for key in keys]
    return msgspec.Raw(json.dumps([{**message, "content": content}]).encode())


def published(work) -> KeptFrames:
    kept = KeptFrames()

    async def main() -> None:
        work(frame_publisher(kept))

    asyncio.run(main())
    return kept


def test_the_messages_of_one_burst_share_one_frame_per_kind():
    def burst(frames) -> None:
        frames.on_data(chart("MSFT"))
        frames.on_data(chart("GOOG", "AAPL"))
        assert frames.flush() == 3

    kept = published(burst)
    assert [(kind, [bar.symbol for bar in records]) for kind, records in kept.frames] == \
        [("bar", ["MSFT", "GOOG", "AAPL"])]


def test_a_full_frame_goes_at_once():
    keys = [f"S{n}" for n in range(COALESCE_RECORDS)]
    kept = published(lambda frames: frames.on_data(chart(*keys)))
    assert [len(records) for _, records in kept.frames] == [COALESCE_RECORDS]


def test_a_rejected_item_is_counted_and_the_rest_of_its_message_published():
    def with_a_bad_item(frames) -> None:
        frames.on_data(chart("MSFT", "not a symbol!"))
        frames.flush()
        assert sum(frames.stats.rejections.values()) == 1 and frames.stats.records_in == 2

    kept = published(with_a_bad_item)
    assert [bar.symbol for bar in kept.records("bar")] == ["MSFT"]
