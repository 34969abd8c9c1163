"""ingest: the one Schwab streamer connection, published onto the bus.

Schwab allows one streamer connection per user, so ingest owns it for every
service: LEVELONE_EQUITIES and CHART_EQUITY for STREAM_TICKERS, and
LEVELONE_OPTIONS for whatever contract set the options actor asks for. Each
Schwab message's records join one frame per kind, with those of the
messages read in the same burst (`common/feed/frames.py`). Without Schwab
credentials the same real schwab-py client is aimed at the simulator.

This module only wires the pieces to the actor: the connection's state
machine (`common/feed/connection.py`) keeps the connection up for months,
logged in only during the configured market sessions, reconnecting after
every kind of failure, and waiting quietly for a new token file when the
refresh token has expired; beside it, the minutes the stream missed while it
was down are filled from price history (`common/feed/bar_repair.py`).

With `STREAM_RECORD` it also records every `data` payload it decodes; with
`STREAM_SOURCE=replay` it logs in nowhere and `replay` feeds such a recording
to the same decoder instead (`common/feed/replay.py`), for peak-throughput runs.
"""

from __future__ import annotations

import asyncio

from common.actor import Actor
from common.feed.bar_repair import BarGaps, BarRepair, PendingGaps, newest_stream_bars
from common.feed.connection import Connection, SchwabClients
from common.feed.frames import FramePublisher
from common.feed.market_hours import clock_from_spec
from common.feed.replay import Recorder, play
from common.feed.schwab_client import make_client
from common.feed.waiting import IDLE_TICK, Idle
from common.transport.bus import Subscriber
from common.transport.messages import OptionSubscription

CONSUMERS = ("writer", "indicator", "options")


async def replay(actor: Actor, frames: FramePublisher, control: Subscriber) -> None:
    """STREAM_REPLAY's recording through `frames`, once, as fast as it goes; then idle until stopped.

    It ends with one log line, "replay finished", saying how many lines and
    records it took how long, and the status `replay_done`. Exiting instead
    would have supervisord start it again, and replay again.
    """
    path, stats = actor.config.stream_replay, actor.stats
    stats.status = "running"
    actor.log.info("replaying a recording", extra={"source": "replay", "path": str(path)})
    items, records = stats.records_in, stats.records_out

    def between() -> None:
        frames.flush()
        while control.recv_nowait() is not None:
            pass  # no contract set to change: the recording streams what it streamed
        actor.tick()

    played = await play(path, frames.on_data, between, lambda: actor.shutdown.requested)
    frames.flush()
    if actor.shutdown.requested:
        return
    seconds, records = max(played.seconds, 1e-9), stats.records_out - records
    actor.log.info("replay finished", extra={
        "path": str(path), "lines": played.lines, "torn": played.torn, "items": stats.records_in - items,
        "records": records, "seconds": round(played.seconds, 3), "lines_per_second": round(played.lines / seconds),
        "records_per_second": round(records / seconds)})
    stats.status = "replay_done"
    stats.maybe_publish(actor.publisher, force=True)
    while not actor.shutdown.requested:
        await asyncio.sleep(IDLE_TICK)
        between()


async def run(actor: Actor) -> None:
    await asyncio.to_thread(actor.wait_for_consumers, *CONSUMERS)
    config = actor.config
    recorder = Recorder(config.stream_record, lambda error: recording_failed(actor, error)) \
        if config.stream_record else None
    control = actor.subscriber()
    control.subscribe("options", OptionSubscription)
    repair = None if config.replays else bar_repair(actor)
    frames = FramePublisher(actor.publisher, actor.stats, actor.log, recorder=recorder,
                            on_bar=None if repair is None else repair.seen, live=not config.replays)
    repairing = None if repair is None else asyncio.create_task(repair.run(lambda: actor.shutdown.requested))
    try:
        if config.replays:
            await replay(actor, frames, control)
        else:
            await connection(actor, frames, control).run()
    finally:
        if repairing is not None:
            repairing.cancel()
        control.close()
        if recorder is not None:
            recorder.close()
    actor.stopped(reconnects=actor.stats.reconnects)


def connection(actor: Actor, frames: FramePublisher, control: Subscriber) -> Connection:
    """The connection, given what it needs of the actor: its clocks, duties, stop request and counters."""
    idle = Idle(stopping=lambda: actor.shutdown.requested, tick=actor.tick,
                clock=clock_from_spec(actor.config.market_clock))
    return Connection(actor.config, frames, control.recv_nowait, SchwabClients(actor.config), idle, actor.stats,
                      actor.log, lambda: actor.stats.maybe_publish(actor.publisher, force=True))


def bar_repair(actor: Actor) -> BarRepair:
    """The repair of minutes the stream missed, knowing the newest bar per ticker ingest's journal holds."""
    config = actor.config
    gaps = BarGaps(config.bar_ms, newest_stream_bars(config.journal_dir("ingest"), config.deployment))
    extended = any(session != "regular" for session in config.market_sessions)
    return BarRepair(gaps, lambda: make_client(config, asyncio=True), actor.publisher.send, actor.stats, actor.log,
                     extended, kept=PendingGaps(config.data_dir / "bar_gaps.json", actor.log))


def recording_failed(actor: Actor, error: OSError) -> None:
    actor.stats.errors += 1
    actor.log.error("recording stopped: a write to STREAM_RECORD failed; streaming goes on",
                    extra={"path": str(actor.config.stream_record), "reason": str(error)})


def main() -> None:
    asyncio.run(run(Actor("ingest", journaled=True)))


if __name__ == "__main__":
    main()
