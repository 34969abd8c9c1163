"""Schwab's minute price history as bar repair asks it, answering from a script: for repair tests."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

import httpx
import msgspec

from common.feed.bar_repair import BarGaps, BarRepair, PendingGaps
from common.observe.stats import ActorStats
from tests.helpers.recordings import KeptFrames

MINUTE_MS = 60_000


class ScriptedHistory:
    """schwab-py's AsyncClient as far as the repair uses it: each call takes the next answer, or raises it."""

    def __init__(self, *answers: httpx.Response | BaseException):
        self.answers = list(answers)
        self.asked: list[str] = []

    async def get_price_history_every_minute(self, symbol, *, start_datetime, end_datetime, need_extended_hours_data):
        self.asked.append(symbol)
        answer = self.answers.pop(0)
        if isinstance(answer, BaseException):
            raise answer
        return answer


def candles(symbol: str, *starts_ms: int) -> httpx.Response:
    """A price-history answer holding one plausible candle per start."""
    body = {"symbol": symbol, "candles": [{"open": 417.1, "high": 417.4, "low": 417.0, "close": 417.25,
                                           "volume": 100, "datetime": start} for start in starts_ms]}
    return httpx.Response(200, content=msgspec.json.encode(body),
                          request=httpx.Request("GET", "https://api.schwabapi.com/marketdata/v1/pricehistory"))


def repairer(client: ScriptedHistory, newest: dict[str, int], now_ms: int, logger: logging.Logger,
             kept: PendingGaps | None = None) -> tuple[BarRepair, list]:
    """A BarRepair on `client` whose clock reads `now_ms`, seeded with `newest`; and the frames it publishes, each
    (kind, records)."""
    sent = KeptFrames()
    repair = BarRepair(BarGaps(MINUTE_MS, newest), lambda: client, sent.send,
                       ActorStats("ingest", 1.0), logger, extended=False, now_ms=lambda: now_ms, kept=kept)
    return repair, sent.frames


def one_turn(repair: BarRepair) -> None:
    """One turn of the repair loop, its backoff waived: it stops as soon as it has looked at the queue once."""
    repair.retry_at = 0.0
    turns: Callable[[], bool] = iter((False, True)).__next__
    asyncio.run(repair.run(turns))
