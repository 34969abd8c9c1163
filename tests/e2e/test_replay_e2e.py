"""A simulator run recorded by ingest, then replayed through the whole pipeline: each trade stored once."""

from __future__ import annotations

import asyncio
from decimal import Decimal

import pytest

from tests.helpers.harness import ACTOR_PROGRAMS, Pipeline, wait_for
from tests.helpers.recordings import replayed


def stored(pipeline: Pipeline) -> list[tuple]:
    return [tuple(row) for row in pipeline.query(
        "SELECT ticker, (extract(epoch FROM timestamp) * 1000)::bigint, day_volume, price, volume"
        " FROM equity_data ORDER BY 1, 2, 3")]


def diagnostics(pipeline: Pipeline) -> str:
    return "\n".join(f"--- {p}.log\n{pipeline.log(p)[-3000:]}" for p in ACTOR_PROGRAMS)


@pytest.mark.e2e
def test_a_simulator_run_recorded_and_replayed_stores_each_recorded_trade_once(tmp_path):
    recording = tmp_path / "recording.jsonl"
    recorded = Pipeline(tickers="SPY,QQQ", rate=200, STREAM_RECORD=str(recording)).start()
    try:
        wait_for(lambda: recorded.count("equity_data") >= 100, 30, "trades from the simulator")
        recorded.ctl("stop", "pipeline:ingest")  # it closes the recording on its way out
        kept, played, _ = asyncio.run(replayed(recording))
        carried = sorted((t.symbol, t.trade_time_ms, t.day_volume, Decimal(str(t.price)), t.size)
                         for t in kept.records("trade"))
        assert played.torn == 0 and len(carried) >= 100
        wait_for(lambda: recorded.count("equity_data") >= len(carried), 20, "the writer to store what ingest sent")
        assert stored(recorded) == carried, "the recording holds what the recording run stored"
    finally:
        recorded.shutdown()

    replaying = Pipeline(tickers="SPY,QQQ", STREAM_SOURCE="replay", STREAM_REPLAY=str(recording),
                         EMBEDDED_SIM="false").start()
    try:
        finished = wait_for(replaying.replay_finished, 30, "the replay to finish")
        assert (finished["lines"], finished["torn"]) == (played.lines, 0), finished
        wait_for(lambda: replaying.count("equity_data") >= len(carried), 20, "every replayed trade stored")
        wait_for(lambda: replaying.query(
            "SELECT DISTINCT source, service_status FROM streaming_metrics WHERE actor = 'ingest'"
            " AND service_status = 'replay_done'"), 15, "ingest's replay_done in streaming_metrics")
        assert replaying.query("SELECT DISTINCT source FROM streaming_metrics") == [("replay",)]
        assert replaying.states().get("ingest") == "RUNNING", "a finished replay idles; it is not restarted"
        assert stored(replaying) == carried, "each trade the recording carries, once"
    except AssertionError as error:
        raise AssertionError(f"{error}\n{diagnostics(replaying)}") from None
    finally:
        replaying.shutdown()


