"""ingest: the one Schwab streamer connection, published onto the bus.

Schwab allows one streamer connection per user, so ingest owns it for every
service: LEVELONE_EQUITIES and CHART_EQUITY for STREAM_TICKERS, and
LEVELONE_OPTIONS for whatever contract set the options actor asks for. Each
Schwab message becomes at most one frame per (kind, symbol). Without Schwab
credentials the same real schwab-py client is aimed at the simulator.

This issue's ingest stops (and supervisord restarts it) when the connection
ends; reconnecting in-process comes with the reconnect work.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import defaultdict
from typing import Any

from websockets.exceptions import ConnectionClosed

from common.actor import Actor
from common.bus import Publisher
from common.levelone import (
    EQUITY_FIELDS,
    OPTION_FIELDS,
    FrameError,
    MergedBook,
    bar_record,
    equity_records,
    option_record,
)
from common.messages import Envelope, OptionSubscription
from common.schwab_client import make_client, make_stream_client
from common.stats import ActorStats

CONSUMERS = ("writer", "indicator", "options")
POLL = 0.25
COMMAND_TIMEOUT = 10.0


class FramePublisher:
    """Turns schwab-py handler calls into bus frames, one per (kind, symbol)."""

    def __init__(self, publisher: Publisher, stats: ActorStats, logger: logging.Logger):
        self.publisher = publisher
        self.stats = stats
        self.logger = logger
        self.equities = MergedBook()
        self.options = MergedBook()

    def _publish(self, kind: str, records: dict[str, list[Any]]) -> None:
        for symbol, batch in records.items():
            self.publisher.send(kind, symbol, batch)
            self.stats.records_out += len(batch)

    def _rejected(self, service: str, item: dict[str, Any], error: FrameError) -> None:
        self.stats.errors += 1
        self.logger.error("content item rejected", extra={"service": service, "reason": str(error), "item": repr(item)[:500]})

    def on_equities(self, message: dict[str, Any]) -> None:
        started, received = time.perf_counter_ns(), time.time_ns()
        trades: dict[str, list[Any]] = defaultdict(list)
        quotes: dict[str, list[Any]] = defaultdict(list)
        for item in message["content"]:
            try:
                trade, quote = equity_records(item, self.equities, received)
            except FrameError as error:
                self._rejected("LEVELONE_EQUITIES", item, error)
                continue
            if trade:
                trades[trade.symbol].append(trade)
            if quote:
                quotes[quote.symbol].append(quote)
        self._publish("trade", trades)
        self._publish("quote", quotes)
        self.stats.records_in += len(message["content"])
        self.stats.batch(len(message["content"]), started)

    def on_chart(self, message: dict[str, Any]) -> None:
        started, received = time.perf_counter_ns(), time.time_ns()
        bars: dict[str, list[Any]] = defaultdict(list)
        for item in message["content"]:
            try:
                bar = bar_record(item, received)
            except FrameError as error:
                self._rejected("CHART_EQUITY", item, error)
                continue
            bars[bar.symbol].append(bar)
        self._publish("bar", bars)
        self.stats.records_in += len(message["content"])
        self.stats.batch(len(message["content"]), started)

    def on_options(self, message: dict[str, Any]) -> None:
        started, received = time.perf_counter_ns(), time.time_ns()
        quotes: dict[str, list[Any]] = defaultdict(list)
        for item in message["content"]:
            try:
                quote = option_record(item, self.options, received)
            except FrameError as error:
                self._rejected("LEVELONE_OPTIONS", item, error)
                continue
            quotes[quote.underlying].append(quote)
        self._publish("option", quotes)
        self.stats.records_in += len(message["content"])
        self.stats.batch(len(message["content"]), started)


class OptionContracts:
    """The union of every underlying's wanted contracts, and how to get there."""

    def __init__(self) -> None:
        self.wanted: dict[str, frozenset[str]] = {}
        self.streaming: frozenset[str] = frozenset()

    def want(self, subscription: OptionSubscription) -> None:
        self.wanted[subscription.underlying] = frozenset(subscription.contracts)

    def changes(self) -> tuple[list[str], list[str]]:
        """(to add, to remove) to move the stream to the wanted set."""
        target = frozenset().union(*self.wanted.values()) if self.wanted else frozenset()
        return sorted(target - self.streaming), sorted(self.streaming - target)


async def apply_option_changes(stream: Any, contracts: OptionContracts, logger: logging.Logger) -> None:
    to_add, to_remove = contracts.changes()
    if to_remove:
        await asyncio.wait_for(stream.level_one_option_unsubs(to_remove), COMMAND_TIMEOUT)
    if to_add:
        subscribe = stream.level_one_option_add if contracts.streaming - set(to_remove) else stream.level_one_option_subs
        await asyncio.wait_for(subscribe(to_add, fields=list(OPTION_FIELDS)), COMMAND_TIMEOUT)
    if to_add or to_remove:
        contracts.streaming = (contracts.streaming - set(to_remove)) | set(to_add)
        logger.info("option contracts changed", extra={"added": len(to_add), "removed": len(to_remove), "streaming": len(contracts.streaming)})


async def run(actor: Actor) -> None:
    config, stats, publisher, logger = actor.config, actor.stats, actor.publisher, actor.log
    await asyncio.to_thread(actor.wait_for_consumers, *CONSUMERS)
    control = actor.subscriber()
    control.subscribe("options", "option_subscription")
    frames = FramePublisher(publisher, stats, logger)
    contracts = OptionContracts()

    client = make_client(config, asyncio=True)
    stream = make_stream_client(client)
    stream.add_level_one_equity_handler(frames.on_equities)
    stream.add_chart_equity_handler(frames.on_chart)
    stream.add_level_one_option_handler(frames.on_options)
    logger.info("logging in", extra={"source": "simulator" if config.uses_simulator else "schwab", "tickers": list(config.tickers)})
    await asyncio.wait_for(stream.login(), COMMAND_TIMEOUT)
    await asyncio.wait_for(stream.level_one_equity_subs(list(config.tickers), fields=list(EQUITY_FIELDS)), COMMAND_TIMEOUT)
    await asyncio.wait_for(stream.chart_equity_subs(list(config.tickers)), COMMAND_TIMEOUT)
    stats.status = "running"
    logger.info("streaming")

    closed: ConnectionClosed | None = None
    while not actor.shutdown.requested:
        try:
            await asyncio.wait_for(stream.handle_message(), POLL)
        except TimeoutError:
            pass
        except ConnectionClosed as error:
            closed = error
            break
        while (frame := control.recv_nowait()) is not None:
            if isinstance(frame, Envelope):
                for subscription in frame.records:
                    contracts.want(subscription)
        await apply_option_changes(stream, contracts, logger)
        actor.tick()

    stats.status = "stopping"
    if closed is None:
        try:
            await asyncio.wait_for(stream.logout(), COMMAND_TIMEOUT)
        except (ConnectionClosed, TimeoutError) as error:
            logger.warning("logout not acknowledged", extra={"reason": repr(error)})
    # Everything Schwab sent before the socket closed is still to be handled.
    try:
        while True:
            await asyncio.wait_for(stream.handle_message(), 2.0)
    except (ConnectionClosed, TimeoutError):
        pass
    control.close()
    if closed is not None and not actor.shutdown.requested:
        actor.stats.status = "disconnected"
        actor.stats.maybe_publish(publisher, force=True)
        publisher.close()
        logger.error("Schwab closed the stream; exiting for supervisord to restart", extra={"reason": repr(closed)})
        raise SystemExit(1)
    actor.stopped()


def main() -> None:
    asyncio.run(run(Actor("ingest", journaled=True)))


if __name__ == "__main__":
    main()
