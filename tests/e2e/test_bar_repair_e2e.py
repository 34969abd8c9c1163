"""Minutes missed while ingest was down, repaired from the simulator's price history: its own bars, exactly once."""

import time

import httpx
import pytest

from common.transport.journal import read_envelopes
from common.transport.messages import MinuteBar
from tests.helpers.harness import Pipeline, wait_for
from tests.helpers.simulator_process import issued_token

pytestmark = pytest.mark.e2e
TICKERS = ("SPY", "QQQ")
#: How long ingest is kept off the stream: five or six one-second bars per ticker.
OUTAGE_SECONDS = 6
BARS = ("SELECT (extract(epoch FROM timestamp) * 1000)::bigint, open::float8, high::float8, low::float8,"
        " close::float8, volume::float8, source FROM equity_bars WHERE ticker = %s ORDER BY timestamp")


def repaired(pipeline: Pipeline) -> dict[str, int]:
    return dict(pipeline.query("SELECT ticker, count(*) FROM equity_bars WHERE source = 'repaired' GROUP BY 1"))


def simulators_bars(pipeline: Pipeline, ticker: str, after_ms: int, before_ms: int) -> list[tuple]:
    """The market's own bars in the window, asked of the simulator as Schwab's price history is asked."""
    url = pipeline.env["SIMULATOR_URL"]
    # The simulator answers only tokens it issued: one of its own, as `make login` gets it.
    answer = httpx.get(f"{url}/marketdata/v1/pricehistory", timeout=10,
                       headers={"Authorization": f"Bearer {issued_token(url)['access_token']}"},
                       params={"symbol": ticker, "startDate": after_ms + 1, "endDate": before_ms - 1})
    answer.raise_for_status()
    return [(c["datetime"], c["open"], c["high"], c["low"], c["close"], float(c["volume"]), "repaired")
            for c in answer.json()["candles"]]


def test_minutes_missed_while_ingest_was_stopped_are_repaired_exactly_once_with_the_markets_own_bars():
    pipeline = Pipeline(tickers=",".join(TICKERS), SIM_BAR_SECONDS="1").start()
    try:
        wait_for(lambda: len(pipeline.query("SELECT ticker FROM equity_bars GROUP BY 1 HAVING count(*) >= 5")) == 2,
                 60, "five bars of each ticker")
        pipeline.ctl("stop", "pipeline:ingest")
        stopped = time.monotonic()
        while time.monotonic() - stopped < OUTAGE_SECONDS:
            time.sleep(1)  # the outage itself is the fault: a fixed time, nothing to await
        pipeline.ctl("start", "pipeline:ingest")
        started = time.monotonic()
        wait_for(lambda: len(repaired(pipeline)) == 2, 60, "repaired bars of each ticker")
        repair_seconds = time.monotonic() - started

        for ticker in TICKERS:
            rows = [tuple(row) for row in pipeline.query(BARS, (ticker,))]
            fixed = [row for row in rows if row[6] == "repaired"]
            after = max(row[0] for row in rows if row[6] == "stream" and row[0] < fixed[0][0])
            before = min(row[0] for row in rows if row[6] == "stream" and row[0] > fixed[-1][0])
            window = [row for row in rows if after < row[0] < before]
            assert window == fixed == simulators_bars(pipeline, ticker, after, before), ticker
            assert len(fixed) >= OUTAGE_SECONDS - 2, f"{ticker}: the outage's bars, every one"

        streamed = {}
        for frame in read_envelopes(pipeline.var / "data" / "journal" / "ingest"):
            for bar in frame.records:
                if isinstance(bar, MinuteBar) and bar.source == "stream":
                    streamed[(bar.symbol, bar.start_ms)] = (bar.open, bar.high, bar.low, bar.close, bar.volume)
        stored = {(ticker, row[0]): row[1:6] for ticker in TICKERS for row in pipeline.query(BARS, (ticker,))
                  if row[6] == "stream"}
        assert stored == streamed, "the stream's own bars, each once and untouched"

        total = sum(repaired(pipeline).values())
        counted = wait_for(lambda: (row := pipeline.query(
            "SELECT coalesce(sum(bars_missing), 0), coalesce(sum(bars_repaired), 0) FROM streaming_metrics"
            " WHERE actor = 'ingest'")[0]) and row[1] == total and row, 30, "the repair in streaming_metrics")
        assert counted[0] == total, "every bar the market had in the window was missed, and repaired"
        assert repair_seconds < 30, "repaired within seconds of streaming again"
    finally:
        pipeline.shutdown()
