"""`make backfill` against the simulator's price history: holes filled with the market's own bars, twice is once."""

import datetime
import subprocess
from zoneinfo import ZoneInfo

import pytest

from tests.helpers.harness import ROOT, Pipeline, wait_for

pytestmark = pytest.mark.e2e
TICKERS = ("SPY", "QQQ")
BARS = ("SELECT ticker, (extract(epoch FROM timestamp) * 1000)::bigint, open, high, low, close, volume, source"
        " FROM equity_bars")


def backfill(pipeline: Pipeline) -> list[str]:
    today = datetime.datetime.now(ZoneInfo("America/New_York")).date().isoformat()
    done = subprocess.run(["make", "--no-print-directory", "backfill", f"TICKERS={','.join(TICKERS)}", f"FROM={today}"],
                          cwd=ROOT, env=pipeline.env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout.splitlines()


def test_backfill_fills_holes_with_the_markets_bars_and_twice_stores_each_bar_once():
    pipeline = Pipeline(tickers=",".join(TICKERS), SIM_BAR_SECONDS="1").start()
    try:
        wait_for(lambda: len(pipeline.query("SELECT ticker FROM equity_bars GROUP BY 1 HAVING count(*) >= 10")) == 2,
                 60, "ten bars of each ticker")
        pipeline.ctl("stop", "pipeline:*")  # the simulator and Postgres stay: the price history is the simulator's
        streamed = {tuple(row[:2]): tuple(row[2:]) for row in pipeline.query(BARS)}
        holes = pipeline.query("DELETE FROM equity_bars WHERE id IN (SELECT id FROM equity_bars"
                               " ORDER BY timestamp DESC OFFSET 2 LIMIT 6) RETURNING ticker,"
                               " (extract(epoch FROM timestamp) * 1000)::bigint")
        assert len(holes) == 6

        first = backfill(pipeline)
        assert len(first) == len(TICKERS) and all(" new" in line for line in first), first
        stored = {tuple(row[:2]): tuple(row[2:]) for row in pipeline.query(BARS)}
        for key in map(tuple, holes):
            assert stored[key][:5] == streamed[key][:5], "the market's own bar, as CHART_EQUITY streamed it"
            assert stored[key][5] == "backfill"
        untouched = {key: values for key, values in stored.items() if key not in set(map(tuple, holes))}
        assert all(values == streamed[key] for key, values in untouched.items() if key in streamed), \
            "a bar the stream delivered is never replaced"
        assert sum(int(line.split(" candles, ")[1].split(" new")[0]) for line in first) >= len(holes)

        # The simulator's market goes on trading while nobody listens, so the second run may find bars completed
        # since the first: those, and only those, are new.
        again = backfill(pipeline)
        after = {tuple(row[:2]): tuple(row[2:]) for row in pipeline.query(BARS)}
        assert {key: after[key] for key in stored} == stored, "twice is once: nothing stored before changes"
        newer = {key: values for key, values in after.items() if key not in stored}
        # Per ticker: the first run asked for one ticker's history after the other's, so one may have a bar more.
        newest = {ticker: max(start for name, start in stored if name == ticker) for ticker in TICKERS}
        assert all(start > newest[ticker] and values[5] == "backfill" for (ticker, start), values in newer.items()), \
            newer
        assert sum(int(line.split(" candles, ")[1].split(" new")[0]) for line in again) == len(newer), again
    finally:
        pipeline.shutdown()
