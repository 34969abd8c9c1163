"""Two deployments, one database: disjoint tickers, one writer SIGKILLed, every trade of both exactly once.

A user who outgrows one Schwab login runs one deployment per login, each with
its own tickers, all writing into the same database. Each pipeline here has
its own supervisord, simulator, bus and journals; the second writes into the
first's database. Their streams, offsets and metrics carry their
`DEPLOYMENT` name, so nothing of one is mistaken for the other's.
"""

from __future__ import annotations

import os
import signal
from decimal import Decimal

import pytest

from common.streams import stored_streams
from common.transport.messages import IndexLevel
from common.transport.topics import tag
from tests.helpers.harness import Pipeline, free_port, wait_for

pytestmark = pytest.mark.e2e

TICKERS = {"alpha": ("SPY", "QQQ"), "beta": ("IWM", "DIA")}


def sent(pipeline: Pipeline, tickers: tuple[str, ...]) -> list[tuple]:
    trades = pipeline.sent_trades()
    return sorted((symbol, trade["trade_time_ms"], trade["day_volume"], Decimal(str(trade["price"])))
                  for symbol in tickers for trade in trades.get(symbol, ()))


def stored(pipeline: Pipeline, tickers: tuple[str, ...]) -> list[tuple]:
    rows = pipeline.query("SELECT ticker, (extract(epoch FROM timestamp) * 1000)::bigint, day_volume, price"
                          " FROM equity_data WHERE ticker = ANY(%s) ORDER BY 1, 2, 3", (list(tickers),))
    return [tuple(row) for row in rows]


def option_rows(pipeline: Pipeline, tickers: tuple[str, ...]) -> int:
    return pipeline.query("SELECT count(*) FROM option_prices WHERE ticker = ANY(%s)", (list(tickers),))[0][0]


def bars(pipeline: Pipeline, tickers: tuple[str, ...]) -> int:
    return pipeline.query("SELECT count(*) FROM equity_bars WHERE ticker = ANY(%s)", (list(tickers),))[0][0]


def test_two_deployments_share_a_database_and_each_trade_is_stored_once():
    alpha = Pipeline(",".join(TICKERS["alpha"]), rate=60, seed=7, DEPLOYMENT="alpha",
                     METRICS_HTTP_PORT=str(free_port()), SIM_BAR_SECONDS="1").start()
    try:
        beta = Pipeline(",".join(TICKERS["beta"]), rate=60, seed=8, database_url=alpha.database_url,
                        DEPLOYMENT="beta", METRICS_HTTP_PORT=str(free_port()), SIM_BAR_SECONDS="1").start()
        try:
            for pipeline, tickers in ((alpha, TICKERS["alpha"]), (beta, TICKERS["beta"])):
                wait_for(lambda p=pipeline, t=tickers: len(stored(p, t)) > 20, 60, f"{tickers} stored")
                # Every stored stream must carry data before its offsets can be asserted: options come last.
                wait_for(lambda p=pipeline, t=tickers: option_rows(p, t) > 0, 60, f"{tickers}' option rows stored")
                wait_for(lambda p=pipeline, t=tickers: bars(p, t) > 0, 30, f"{tickers}' bars stored")

            writer = beta.pid("writer")
            os.kill(writer, signal.SIGKILL)
            wait_for(lambda: beta.states().get("writer") == "RUNNING" and beta.pid("writer") != writer,
                     30, "supervisord to restart beta's writer")
            after = len(stored(beta, TICKERS["beta"]))
            wait_for(lambda: len(stored(beta, TICKERS["beta"])) > after + 20, 30, "beta's trades after the kill")

            beta.stop_all()
            expected = {"beta": sent(beta, TICKERS["beta"])}  # read before shutdown removes its files
        finally:
            beta.shutdown()
        alpha.stop_and_reopen()
        expected["alpha"] = sent(alpha, TICKERS["alpha"])

        for deployment, tickers in TICKERS.items():
            assert len(expected[deployment]) > 40, "each simulator traded for a while"
            assert stored(alpha, tickers) == expected[deployment], f"{tickers}: every trade sent, stored once"

        offsets = alpha.query("SELECT stream FROM stream_offsets WHERE consumer = 'writer' ORDER BY 1")
        # Every stored stream that carried data: no index among the tickers, so no level was ever sent.
        assert [row[0] for row in offsets] == sorted(
            name for deployment in TICKERS for name in stored_streams(deployment, frozenset())
            if not name.endswith("/" + tag(IndexLevel)))
        deployments = alpha.query("SELECT DISTINCT deployment FROM streaming_metrics ORDER BY 1")
        assert deployments == [("alpha",), ("beta",)]
    finally:
        alpha.shutdown()
