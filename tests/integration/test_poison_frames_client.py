"""Poison frames through the real schwab-py client and ingest's connection, against the simulator.

Issue 25, item 14, as an operator meets it: frames stamped in year 9892 and
past 9999, a bar in the far future, a volume of 1e300, a zero-strike option
key and a volume no market has reach ingest over the websocket (`/sim/inject`);
each is refused and counted, the connection stays up, and the good frames
sent after them, the simulator's and injected ones alike, are decoded and
published.
"""

from __future__ import annotations

import asyncio
import logging
import time
from pathlib import Path

from common import config as config_module
from common.feed.connection import Connection, SchwabClients
from common.feed.services.chart_equity import NAME as CHART_EQUITY
from common.feed.services.levelone_equities import NAME as LEVELONE_EQUITIES
from common.feed.services.levelone_options import NAME as LEVELONE_OPTIONS
from common.feed.frames import FramePublisher
from common.feed.waiting import Idle
from common.observe.stats import ActorStats
from tests.helpers.poison_frames import (
    MINUTE_MS,
    PAST_9999_MS,
    YEAR_9892_MS,
    WatchedFrames,
    bar,
    entry,
    equity,
    inject,
    message,
    option,
)
from tests.helpers.simulator_process import simulator

#: What each poison entry below is counted as.
REFUSED = {"frame_in_future": 3, "time_out_of_range": 1, "size_implausible": 2, "key_implausible": 1}


def poison(now_ms: int) -> str:
    return message(
        entry(LEVELONE_EQUITIES, YEAR_9892_MS, equity("SPY", last=580.0, total_volume=10**9, trade_time=YEAR_9892_MS)),
        entry(LEVELONE_EQUITIES, PAST_9999_MS, equity("SPY", last=580.0, total_volume=10**9)),
        entry(CHART_EQUITY, YEAR_9892_MS, bar("SPY", YEAR_9892_MS)),
        entry(CHART_EQUITY, now_ms, bar("ZZZ", YEAR_9892_MS)),
        entry(CHART_EQUITY, now_ms, bar("ZZZ", now_ms - MINUTE_MS, volume=1e300)),
        entry(LEVELONE_OPTIONS, now_ms, option("SPY   261218C00000000", now_ms)),
        entry(LEVELONE_EQUITIES, now_ms, equity("ZZZ", last=12.5, total_volume=10**30)),
    )


def good(now_ms: int) -> list[str]:
    """A snapshot of ZZZ, a last price of 0 (no shares lost to it), then 100 shares traded, and a bar."""
    return [message(entry(LEVELONE_EQUITIES, now_ms, equity("ZZZ", last=12.5, total_volume=1000))),
            message(entry(LEVELONE_EQUITIES, now_ms + 1, equity("ZZZ", last=0))),
            message(entry(LEVELONE_EQUITIES, now_ms + 2, equity("ZZZ", total_volume=1100)),
                    entry(CHART_EQUITY, now_ms + 2, bar("ZZZ", now_ms - MINUTE_MS)))]


def test_poison_frames_cost_only_themselves_on_the_real_client_path(tmp_path: Path):
    with simulator("--rate", "100", "--heartbeat", "0.2", log=tmp_path / "simulator.log") as url:
        config = config_module.load({"STREAMING_VAR": str(tmp_path / "var"), "SIMULATOR_URL": url,
                                     "STREAM_TICKERS": "SPY"})
        kept, stats, log = WatchedFrames(), ActorStats("ingest", interval=0), logging.getLogger("test.poison.client")
        frames = FramePublisher(kept, stats, log, live=True)  # type: ignore[arg-type]
        stopping = asyncio.Event()
        idle = Idle(stopping=stopping.is_set, tick=lambda: None)
        connection = Connection(config, frames, lambda: None, SchwabClients(config), idle, stats, log, lambda: None)

        def trades(symbol: str, after: int = 0) -> list:
            return [t for kind, records in kept.frames[after:] if kind == "trade" for t in records
                    if t.symbol == symbol]

        def bars(symbol: str) -> list:
            return [b for b in kept.records("bar") if b.symbol == symbol]

        async def main() -> None:
            running = asyncio.create_task(connection.run())
            await kept.until(lambda: trades("SPY"), 30, "simulated SPY trade: streaming")
            now_ms = time.time_ns() // 1_000_000
            assert await asyncio.to_thread(inject, url, poison(now_ms)) == 1
            for text in good(now_ms):
                assert await asyncio.to_thread(inject, url, text) == 1
            await kept.until(lambda: trades("ZZZ") and bars("ZZZ"), 30, "good frames after the poison")
            after = len(kept.frames)
            await kept.until(lambda: trades("SPY", after), 30, "simulated SPY trade after the poison")
            stopping.set()
            await asyncio.wait_for(running, 30)

        asyncio.run(main())
        assert stats.reconnects == {}, "the connection stayed up"
        assert {reason: stats.rejections.get(reason) for reason in REFUSED} == REFUSED, stats.rejections
        assert [(t.size, t.price, t.day_volume) for t in trades("ZZZ")] == [(100, 12.5, 1100)]
        assert [b.volume for b in bars("ZZZ")] == [1200.0]
