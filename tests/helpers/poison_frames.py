"""Poison frames: Schwab `data` entries whose timestamps or values no market has, and a publisher to await.

Built as Schwab writes them (field numbers as keys), so the same entries go
to the edge decoder in a unit test and through the simulator's `/sim/inject`
to the real schwab-py client in an integration test.
"""

from __future__ import annotations

import asyncio
import datetime
import json
import logging
from collections.abc import Callable, Sequence
from typing import Any

import httpx
import msgspec

from common.feed import edge
from common.feed.frames import FramePublisher
from common.observe.stats import ActorStats
from common.transport.messages import MinuteBar
from tests.helpers.recordings import KeptFrames
from tests.helpers.simulator_process import control_headers

MINUTE_MS = 60_000


def epoch_ms(year: int, month: int = 1, day: int = 1) -> int:
    """Midnight UTC of a day, in epoch ms."""
    return int(datetime.datetime(year, month, day, tzinfo=datetime.timezone.utc).timestamp() * 1000)


#: Year 9892, as the frame the issue found stamped.
YEAR_9892_MS = epoch_ms(9892, 3, 4)
#: Past year 9999: no calendar holds it (Python's datetime stops at 9999-12-31).
PAST_9999_MS = 300_000_000_000_000


def equity(key: str, **fields: Any) -> dict:
    """A LEVELONE_EQUITIES item: `last`, `total_volume`, `bid`, `trade_time` by name, as Schwab's numbers."""
    numbers = {"bid": "1", "ask": "2", "last": "3", "total_volume": "8", "trade_time": "35"}
    return {"key": key, **{numbers[name]: value for name, value in fields.items()}}


def bar(key: str, start_ms: int, volume: float = 1200.0, sequence: int = 7) -> dict:
    """A CHART_EQUITY item: a plausible minute bar starting at `start_ms`."""
    return {"key": key, "1": sequence, "2": 580.0, "3": 580.5, "4": 579.9, "5": 580.2, "6": volume, "7": start_ms}


def option(key: str, quote_ms: int) -> dict:
    """A LEVELONE_OPTIONS item with a bid, an ask and a quote time."""
    return {"key": key, "2": 1.2, "3": 1.3, "38": quote_ms}


def entry(service: str, timestamp: int, *items: dict) -> dict:
    return {"service": service, "timestamp": timestamp, "command": "SUBS", "content": list(items)}


def message(*entries: dict) -> str:
    """A streamer message carrying `entries` as its `data`: the text `/sim/inject` sends on."""
    return json.dumps({"data": list(entries)})


def data(*entries: dict) -> bytes:
    """The `data` list of a message, as `CheckedDecoder` hands it to the edge."""
    return json.dumps(list(entries)).encode()


def decoded_at(now_ms: int, *entries: dict, live: bool = True) -> edge.Decoded:
    """What the edge makes of a message of `entries` received when the clock read `now_ms`."""
    return edge.decode(msgspec.Raw(data(*entries)), received_ms=now_ms, live=live)


def reasons(decoded: edge.Decoded) -> list[str]:
    return [rejection.reason for rejection in decoded.rejections]


def published_at(now_ns: int, live: bool, *messages: bytes, **options: Any) -> tuple[KeptFrames, FramePublisher]:
    """What ingest's FramePublisher, its receive clock reading `now_ns`, sends for `messages` (each a `data`
    list), and the publisher, for its counters; `options` are the publisher's own (`on_bar`)."""
    kept = KeptFrames()

    async def main() -> FramePublisher:
        stats, logger = ActorStats("ingest", interval=0), logging.getLogger("test.poison")
        frames = FramePublisher(kept, stats, logger, live=live,  # type: ignore[arg-type]
                                clock=lambda: now_ns, **options)
        for text in messages:
            frames.on_data(msgspec.Raw(text))
        frames.flush()
        return frames

    return kept, asyncio.run(main())


def stream_bar(symbol: str, start_ms: int) -> MinuteBar:
    """A bar as the stream delivered it, for bar repair's gap detection."""
    return MinuteBar(symbol, start_ms, 417.1, 417.4, 417.0, 417.25, 100.0, 1, 1, "stream")


def inject(url: str, text: str) -> int:
    """Have the simulator at `url` send `text` to every logged-in connection; how many it reached."""
    answer = httpx.post(f"{url}/sim/inject", content=text.encode(), headers=control_headers(url), timeout=10)
    answer.raise_for_status()
    return answer.json()["sent_to"]


class WatchedFrames(KeptFrames):
    """Ingest's publisher stand-in that a test can await: `until` returns once the frames sent satisfy a test."""

    def __init__(self) -> None:
        super().__init__()
        self.changed = asyncio.Event()

    def send(self, records: Sequence[Any]) -> int:
        sent = super().send(records)
        self.changed.set()
        return sent

    async def until(self, satisfied: Callable[[], bool], timeout: float, what: str) -> None:
        """Wake at every frame sent until `satisfied()`; AssertionError naming `what` after `timeout` seconds."""
        try:
            async with asyncio.timeout(timeout):
                while not satisfied():
                    self.changed.clear()
                    await self.changed.wait()
        except TimeoutError:
            raise AssertionError(f"no {what} within {timeout:g} s") from None
