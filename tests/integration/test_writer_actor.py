"""`python -m actors.writer` as a real process, between a real bus and a real Postgres."""

import json
import os
import shutil
import signal
import tempfile
from pathlib import Path

import psycopg
import pytest

from common.config import load
from common.transport.bus import Publisher
from common.transport.messages import IndicatorValue, OptionQuote
from tests.helpers.harness import wait_for
from tests.helpers.writer_process import T0, await_writer, trade, writer_process


@pytest.fixture
def var():
    path = Path(tempfile.mkdtemp(prefix="wr", dir="/tmp"))
    yield path
    shutil.rmtree(path, ignore_errors=True)


def test_flushes_on_sigterm_and_a_duplicate_costs_nothing_else(migrated_url, var):
    env = {**os.environ, "STREAMING_VAR": str(var), "DATABASE_URL": migrated_url, "STREAM_SOURCE": "simulator",
           "BATCH_INTERVAL": "60s", "BATCH_SIZE": "100000", "HEARTBEAT_INTERVAL": "0.2s", "DEPLOYMENT": "test"}
    config = load(env)
    config.ensure_dirs()
    ingest, indicator = Publisher(config, "ingest"), Publisher(config, "indicator")
    with writer_process(env, var) as writer:
        await_writer(ingest, indicator)
        # Trades 0 and 1 share a millisecond; trade 3 arrives twice inside one frame.
        trades = [trade(i, T0 + (i if i > 1 else 0)) for i in range(40)]
        ingest.send("trade", trades[:20])
        ingest.send("trade", trades[20:] + [trades[3]])
        indicator.send("indicator", [IndicatorValue("SPY", T0, 1000, 500.0, None, 500.0, 1)])
        ingest.close()
        indicator.close()
        with psycopg.connect(migrated_url) as connection:
            assert connection.execute("SELECT count(*) FROM equity_data").fetchone()[0] == 0, \
                "BATCH_INTERVAL is 60 s: nothing may be written before the SIGTERM"
        writer.send_signal(signal.SIGTERM)
        assert writer.wait(timeout=20) == 0

    with psycopg.connect(migrated_url) as connection:
        stored = connection.execute(
            "SELECT (extract(epoch FROM timestamp) * 1000)::bigint, day_volume, price FROM equity_data ORDER BY day_volume"
        ).fetchall()
        assert connection.execute("SELECT count(*) FROM indicators").fetchone()[0] == 1
    assert [(t, v, float(p)) for t, v, p in stored] == [(t.trade_time_ms, t.day_volume, t.price) for t in trades]
    lines = [json.loads(line) for line in (var / "writer.log").read_text().splitlines()]
    assert all(line["actor"] == "writer" for line in lines)
    assert [line["duplicates"] for line in lines if line["msg"] == "rows already stored were skipped"] == [1]


def option(strike: float, expiration: str = "2026-11-24", delta: float | None = 0.5) -> OptionQuote:
    return OptionQuote("SPY   261124C00500000", "SPY", T0, "C", strike, expiration, 1.0, 0.9, 1.1, 1.0, 10, 100,
                       20.0, delta, 0.01, -0.1, 0.05, 0.01, 500.0, 1)


def test_a_row_the_table_rejects_is_quarantined_and_the_rest_stored(migrated_url, var):
    env = {**os.environ, "STREAMING_VAR": str(var), "DATABASE_URL": migrated_url, "STREAM_SOURCE": "simulator",
           "HEARTBEAT_INTERVAL": "0.2s", "DEPLOYMENT": "test"}
    config = load(env)
    config.ensure_dirs()
    ingest = Publisher(config, "ingest")
    with writer_process(env, var) as writer:
        await_writer(ingest)
        # A strike of 1e15 overflows numeric(18,6): that quote's row can never be stored.
        ingest.send("option", [option(500.0), option(1e15), option(505.0)])
        # Its greeks must be modelled to its expiry, which is no date: no row can be made of it.
        ingest.send("option", [option(510.0), option(515.0, expiration="soon", delta=None)])
        with psycopg.connect(migrated_url) as connection:
            wait_for(lambda: connection.execute("SELECT count(*) FROM option_prices").fetchone()[0] == 3, 20,
                     "the three good rows")
            (seq,) = connection.execute("SELECT seq FROM stream_offsets WHERE stream = 'test/ingest/option'"
                                        ).fetchone()
        assert seq == 2, "the offset moved past the rejected row's frame: it will not block the stream"
        ingest.close()
        writer.send_signal(signal.SIGTERM)
        assert writer.wait(timeout=20) == 0
    letters = [json.loads(line) for line in (var / "data" / "dead-letter" / "writer.jsonl").read_text().splitlines()]
    reasons = {letter["row"][4]: letter["reason"] for letter in letters if letter["table"] == "option_prices"}
    assert reasons.keys() == {1e15, 515.0} and len(letters) == 2
    assert "numeric field overflow" in reasons[1e15], "the table refused it"
    assert "'soon'" in reasons[515.0], "no row could be made of it"
