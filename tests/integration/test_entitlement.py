"""Real-time or delayed (issue 26, item 5): an account Schwab serves delayed data is told so.

The simulator serves as Schwab serves an account not entitled to real-time
data (`--delayed`: every level-one item `"delayed": true`); the real
schwab-py client reads it through ingest's own decoder and frame publisher;
the metrics actor's roll-up makes the `streaming_metrics` row the writer
stores; `make health`'s reading of the database then WARNs, and the status
page's data says DELAYED.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from datetime import datetime, timezone

import msgspec
import psycopg

from common import config as config_module
from common.feed.frames import FramePublisher
from common.feed.schwab_client import make_client, make_stream_client
from common.feed.streamer import CheckedDecoder
from common.observe import health
from common.observe.exposition import ActorView, Snapshot
from common.observe.exposition import health as healthz
from common.observe.rollup import MetricsRollup
from common.observe.stats import ActorStats
from common.store import db
from tests.helpers.recordings import KeptFrames
from tests.helpers.simulator_process import issued_token, simulator

log = logging.getLogger("entitlement-test")


def stream_for_a_while(url: str, tmp_path, stats: ActorStats) -> None:
    """ingest's decoding of a session of SPY and one option contract, as the connection wires it."""
    config = config_module.load({"STREAMING_VAR": str(tmp_path / "var"), "SIMULATOR_URL": url})
    config.schwab_token_path.parent.mkdir(parents=True, mode=0o700)
    config.schwab_token_path.write_text(json.dumps({"creation_timestamp": int(time.time()),
                                                    "token": issued_token(url)}))
    frames = FramePublisher(KeptFrames(), stats, log, live=True)

    def entitled(status: str | None) -> None:
        stats.entitlement = status

    async def session() -> None:
        client = make_client(config, asyncio=True)
        stream = make_stream_client(client)
        stream.set_json_decoder(CheckedDecoder(frames.on_data, log, lambda: None, on_login=entitled))
        await stream.login()
        await stream.level_one_equity_subs(["SPY"])
        deadline = time.monotonic() + 10
        while stats.records_in < 20:
            assert time.monotonic() < deadline, "timed out waiting for the simulator"
            await asyncio.wait_for(stream.handle_message(), 5)
        await stream.logout()
        await client.close_async_session()

    asyncio.run(session())


def stored_row(migrated_url: str, stats: ActorStats) -> None:
    rollup = MetricsRollup(stale_after_ns=60_000_000_000, source="simulator", deployment="test")
    rollup.observe(stats.sample())
    rows = [msgspec.structs.astuple(row) for row in rollup.rows(time.time_ns())]
    with db.connect(migrated_url) as conn:
        assert db.write_batches(conn, {"streaming_metrics": rows}) == {"streaming_metrics": 1}


def test_delayed_data_is_stored_warned_by_health_and_shown_on_the_status_page(migrated_url, tmp_path):
    stats = ActorStats("ingest", 1.0)
    with simulator("--seed", "7", "--rate", "200", "--delayed") as url:
        stream_for_a_while(url, tmp_path, stats)
    assert (stats.entitlement, stats.delayed_services) == ("NP", "LEVELONE_EQUITIES")
    stored_row(migrated_url, stats)
    with psycopg.connect(migrated_url) as conn:
        assert conn.execute("SELECT entitlement, delayed_services FROM streaming_metrics").fetchall() == [
            ("NP", "LEVELONE_EQUITIES")]

    facts = health.read_database(migrated_url)
    (realtime,) = [check for check in health.evaluate(health.Facts(facts, actors={}), datetime.now(timezone.utc),
                                                      health.schedules_for(("regular",), True))
                   if check.name == "realtime"]
    assert realtime.level is health.Level.WARN and "LEVELONE_EQUITIES delayed (LOGIN status NP)" in realtime.detail

    page = healthz(Snapshot((ActorView(stats.sample()),)), ("ingest",), time.time_ns(), 60_000_000_000, "simulator")
    assert page["realtime"] == {"entitlement": "NP", "delayed": ["LEVELONE_EQUITIES"]} and page["status"] == "degraded"


def test_an_entitled_account_is_real_time(migrated_url, tmp_path):
    stats = ActorStats("ingest", 1.0)
    with simulator("--seed", "7", "--rate", "200") as url:
        stream_for_a_while(url, tmp_path, stats)
    assert (stats.entitlement, stats.delayed_services) == ("NP", "")
    stored_row(migrated_url, stats)
    facts = health.read_database(migrated_url)
    assert health.check_entitlement(facts.entitlement).detail == "real-time (LOGIN status NP)"
