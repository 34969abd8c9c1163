"""End to end through supervisord: simulator → ingest → … → writer → Postgres."""

from decimal import Decimal

import pytest

from common.transport.journal import read_envelopes
from tests.helpers.harness import ACTOR_PROGRAMS, Pipeline, wait_for

pytestmark = pytest.mark.e2e
TABLES = ("equity_data", "indicators", "option_prices", "streaming_metrics", "stream_metrics")
TICKERS = ("SPY", "QQQ")


@pytest.fixture
def pipeline():
    running = Pipeline(tickers=",".join(TICKERS)).start()
    try:
        yield running
    finally:
        running.shutdown()


def diagnostics(pipeline: Pipeline) -> str:
    return "\n".join(f"--- {p}.log\n{pipeline.log(p)[-3000:]}" for p in (*ACTOR_PROGRAMS, "simulator", "postgres"))


def test_rows_land_everywhere_and_stop_all_keeps_every_tick(pipeline):
    try:
        wait_for(lambda: all(pipeline.count(table) for table in TABLES), 30, "rows in all four tables")
    except AssertionError as error:
        raise AssertionError(f"{error}\n{diagnostics(pipeline)}") from None
    programs = (*ACTOR_PROGRAMS, "postgres", "simulator")
    wait_for(lambda: all(pipeline.states().get(p) == "RUNNING" for p in programs), 15, "every program RUNNING")
    health = wait_for(lambda: pipeline.query(
        "SELECT status, lag_seconds, journal_bytes, source FROM get_streaming_health('SPY') WHERE journal_bytes > 0"),
        15, "journal size in the health function")
    assert health[0][0] == "healthy" and health[0][1] < 60 and health[0][3] == "simulator", health
    assert pipeline.query("SELECT DISTINCT source FROM streaming_metrics") == [("simulator",)]

    pipeline.stop_all()
    assert set(pipeline.states().values()) == {"STOPPED"}
    for program in ACTOR_PROGRAMS:
        assert '"msg":"stopped"' in pipeline.log(program), f"{program} did not stop cleanly\n{diagnostics(pipeline)}"

    pipeline.ctl("start", "embedded:postgres")
    wait_for(lambda: pipeline.count("equity_data"), 30, "Postgres to come back")
    sent_trades = pipeline.sent_trades()
    sent = sorted(
        (symbol, trade["trade_time_ms"], trade["day_volume"], Decimal(str(trade["price"])), trade["size"])
        for symbol in TICKERS
        for trade in sent_trades[symbol]
    )
    stored = pipeline.query(
        "SELECT ticker, (extract(epoch FROM timestamp) * 1000)::bigint, day_volume, price, volume"
        " FROM equity_data ORDER BY 1, 2, 3"
    )
    assert len(sent) > 20, "the simulator should have traded for a while"
    assert pipeline.report()["counts"]["trades"] == sum(map(len, sent_trades.values())), "the log holds every trade counted"
    assert [tuple(row) for row in stored] == sent
    assert pipeline.count("equity_quotes") == 0, "quotes are stored only when asked (STORE_QUOTES)"
    journaled_kinds = {frame.stream.rsplit("/", 1)[1]
                       for frame in read_envelopes(pipeline.var / "data" / "journal" / "ingest")}
    assert "quote" not in journaled_kinds and "trade" in journaled_kinds, "nor journaled, unasked"
