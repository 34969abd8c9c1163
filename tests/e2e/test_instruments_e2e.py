"""A stock, an index and a future through supervisord (issue 26): `STREAM_TICKERS=SPY,$SPX,/ES` on the simulator.

$SPX's level is stored in index_levels and never as a trade; its bars in equity_bars; its SMA9 in
indicators with no VWAP; its options are SPXW contracts of one expiry, stored under `$SPX`. /ES's trades are
in equity_data with the contract they were in, its bars in equity_bars, its VWAP in indicators.
"""

from __future__ import annotations

import pytest

from tests.helpers.harness import ACTOR_PROGRAMS, Pipeline, wait_for

pytestmark = pytest.mark.e2e


@pytest.fixture
def pipeline():
    running = Pipeline(tickers="SPY,$SPX,/ES", SIM_BAR_SECONDS="1").start()
    try:
        yield running
    finally:
        running.shutdown()


def test_an_index_and_a_future_stream_beside_a_ticker(pipeline):
    def everything() -> bool:
        return all(pipeline.query(sql)[0][0] for sql in (
            "SELECT count(*) FROM index_levels WHERE ticker = '$SPX'",
            "SELECT count(*) FROM equity_bars WHERE ticker = '$SPX'",
            "SELECT count(*) FROM indicators WHERE ticker = '$SPX' AND sma9 IS NOT NULL",
            "SELECT count(*) FROM option_prices WHERE ticker = '$SPX'",
            "SELECT count(*) FROM equity_data WHERE ticker = 'SPY'",
            "SELECT count(*) FROM equity_data WHERE ticker = '/ES'",
            "SELECT count(*) FROM equity_bars WHERE ticker = '/ES'",
            "SELECT count(*) FROM indicators WHERE ticker = '/ES' AND sma9 IS NOT NULL"))

    try:
        wait_for(everything, 60, "$SPX's levels, bars, SMA9 and options, SPY's trades, /ES's trades, bars and SMA9")
    except AssertionError as error:
        logs = "\n".join(f"--- {p}.log\n{pipeline.log(p)[-2000:]}" for p in (*ACTOR_PROGRAMS, "simulator"))
        raise AssertionError(f"{error}\n{logs}") from None
    assert pipeline.query("SELECT count(*) FROM equity_data WHERE ticker = '$SPX'") == [(0,)], "a level is no trade"
    assert pipeline.query("SELECT count(*) FILTER (WHERE vwap IS NOT NULL), count(*) FILTER (WHERE day_volume <> 0)"
                          " FROM indicators WHERE ticker = '$SPX'") == [(0, 0)], "no VWAP, no volume"
    assert pipeline.query("SELECT bool_and(vwap IS NOT NULL) FROM indicators WHERE ticker = 'SPY'") == [(True,)]
    assert pipeline.query("SELECT DISTINCT volume FROM equity_bars WHERE ticker = '$SPX'") == [(0,)]
    roots = pipeline.query("SELECT DISTINCT left(option_symbol, 6), expiration_date FROM option_prices"
                           " WHERE ticker = '$SPX'")
    assert [root for root, _ in roots] == ["SPXW  "], roots
    levels = pipeline.query("SELECT min(level), max(level), count(DISTINCT level) FROM index_levels")
    assert 5000 < levels[0][0] <= levels[0][1] < 7000 and levels[0][2] > 5, levels
    contracts = pipeline.query("SELECT DISTINCT ticker, contract FROM equity_data ORDER BY 1")
    assert [ticker for ticker, _ in contracts] == ["/ES", "SPY"] and contracts[1][1] is None, contracts
    assert contracts[0][1].startswith("/ES") and len(contracts[0][1]) == 6, "the active quarterly contract"
    assert pipeline.query("SELECT bool_and(vwap IS NOT NULL) FROM indicators WHERE ticker = '/ES'") == [(True,)]
    assert pipeline.query("SELECT count(*) FROM equity_bars WHERE ticker = '/ES' AND sequence IS NOT NULL") == [(0,)]
    assert pipeline.query("SELECT count(*) FROM option_prices WHERE ticker = '/ES'") == [(0,)], \
        "a future's options are another service: none are read or streamed"
