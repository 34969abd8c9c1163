"""Nothing lost, nothing doubled: the real processes under supervisord, with faults."""

import json
import os
import signal
import time
from decimal import Decimal

import pytest

from common.analytics.indicators import IndicatorEngine
from common.transport.journal import read_envelopes
from common.transport.topics import stream
from tests.helpers.harness import Pipeline, wait_for
from tests.helpers.snapshots import expected_snapshots

pytestmark = pytest.mark.e2e
TICKERS = ("SPY", "QQQ")


def sent_trades(pipeline: Pipeline) -> list[tuple]:
    by_symbol = pipeline.sent_trades()
    return sorted(
        (symbol, t["trade_time_ms"], t["day_volume"], Decimal(str(t["price"])))
        for symbol in TICKERS
        for t in by_symbol[symbol]
    )


def assert_exactly_once(pipeline: Pipeline) -> None:
    sent, stored = sent_trades(pipeline), pipeline.stored_trades()
    assert len(sent) > 50, "the simulator should have traded for a while"
    assert stored == sent, f"{len(sent)} sent, {len(stored)} stored; missing {sorted(set(sent) - set(stored))[:5]}"
    (indicators,) = pipeline.query("SELECT count(*) FROM indicators")[0]
    assert indicators == len(sent), "one indicator row per trade, none twice"
    in_order = pipeline.query(
        "SELECT ticker, bool_and(day_volume > prev) FROM (SELECT ticker, day_volume,"
        " lag(day_volume, 1, -1::bigint) OVER (PARTITION BY ticker ORDER BY id) AS prev FROM equity_data) t GROUP BY 1"
    )
    assert all(ok for _, ok in in_order), f"rows arrived out of order per symbol: {in_order}"


def assert_no_false_alarm(pipeline: Pipeline) -> None:
    """Nothing was lost, so the writer says nothing was: no ERROR line, no gap counted (its metrics rows are
    journaled too, so a restart does not lose the ones in flight)."""
    errors = [line for line in pipeline.log("writer").splitlines()
              if not line.startswith("{") or json.loads(line)["level"] == "error"]  # a traceback is no JSON
    assert errors == [], errors[:3]
    (gaps,) = pipeline.query("SELECT coalesce(sum(gap_count), 0) FROM streaming_metrics WHERE actor = 'writer'")[0]
    assert gaps == 0


@pytest.fixture
def pipeline(request):
    settings = dict(getattr(request, "param", {}))
    running = Pipeline(tickers=",".join(TICKERS), rate=settings.pop("rate", 200), **settings).start()
    try:
        yield running
    finally:
        running.shutdown()


def assert_bars_exactly_once(pipeline: Pipeline) -> None:
    """Every bar the simulator sent is stored once, with the values of its last revision: compared with the
    bars ingest received (its journal) and with the simulator's own count."""
    received, bars = {}, 0
    for bar in journaled(pipeline, stream("test", "ingest", "bar")):
        bars += 1
        received[(bar.symbol, bar.start_ms)] = (Decimal(str(bar.open)), Decimal(str(bar.high)),
                                                Decimal(str(bar.low)), Decimal(str(bar.close)))
    stored = pipeline.query("SELECT ticker, (extract(epoch FROM timestamp) * 1000)::bigint, open, high, low, close"
                            " FROM equity_bars")
    assert len(received) >= 5, "the simulator should have closed a few bars"
    assert len(stored) == len({(ticker, start) for ticker, start, *_ in stored}) == len(received)
    assert {(ticker, start): tuple(values) for ticker, start, *values in stored} == received
    assert pipeline.report()["counts"]["bars"] == bars, "each bar the simulator sent was received"


def assert_option_snapshots_exactly_once(pipeline: Pipeline) -> None:
    """One row per contract and second (the harness's OPTION_STORE_INTERVAL), its last quote of the second, as
    the plain recomputation from ingest's journal says; the second open when the pipeline stopped may or may
    not have been closed by ingest's later frames or heartbeats before the writer stopped, never anything else."""
    quotes = [(record, (frame.epoch, frame.seq)) for frame in read_envelopes(pipeline.var / "data" / "journal" / "ingest")
              if frame.stream == stream("test", "ingest", "option") for record in frame.records]
    second = 1_000_000_000
    closed = expected_snapshots(quotes, second)
    every = expected_snapshots(quotes, second, closed_before_ns=2**62)
    row = {(quote.symbol, start): (None if quote.bid is None else Decimal(str(round(quote.bid, 6))),
                                   quote.received_ns // 1000) for start, quote in every}
    stored = pipeline.query("SELECT option_symbol, (extract(epoch FROM timestamp) * 1e9)::int8, bid,"
                            " (extract(epoch FROM received_at) * 1e6)::int8 FROM option_prices")
    keys = [(symbol, start) for symbol, start, *_ in stored]
    assert len(closed) > 20, "options streamed for a while"
    assert len(set(keys)) == len(keys), "no contract twice in one second"
    assert {(quote.symbol, start) for start, quote in closed} <= set(keys) <= set(row), \
        "every closed second is stored, and nothing but its snapshots"
    wrong = [(symbol, start, bid, received, row[(symbol, start)]) for symbol, start, bid, received in stored
             if row[(symbol, start)][0] != bid or abs(row[(symbol, start)][1] - received) > 1]  # µs, via float8
    assert wrong == [], f"each row is its contract's last quote of that second: {wrong[:3]}"


def assert_quotes_exactly_once(pipeline: Pipeline) -> None:
    """Every quote change ingest journaled (STORE_QUOTES on) is one row, in order per ticker."""
    def price(value: float | None) -> Decimal | None:
        return None if value is None else Decimal(str(value))

    received = sorted((quote.symbol, quote.quote_time_ms, price(quote.bid), price(quote.ask), quote.bid_size,
                       quote.ask_size) for quote in journaled(pipeline, stream("test", "ingest", "quote")))
    stored = pipeline.query("SELECT ticker, (extract(epoch FROM timestamp) * 1000)::bigint, bid, ask, bid_size,"
                            " ask_size FROM equity_quotes")
    assert len(received) > 50, "quotes should have changed for a while"
    assert sorted(tuple(row) for row in stored) == received


@pytest.mark.parametrize("pipeline", [{"SIM_BAR_SECONDS": "1", "STORE_QUOTES": "true"}], indirect=True)
def test_writer_killed_mid_batch_again_and_again(pipeline):
    wait_for(lambda: pipeline.count("equity_data") > 20, 30, "ticks flowing")
    for _ in range(4):
        writer = pipeline.pid("writer")
        before = pipeline.count("equity_data")
        wait_for(lambda: pipeline.count("equity_data") > before + 20, 30, "the writer to be mid-stream")
        os.kill(writer, signal.SIGKILL)
        wait_for(lambda: pipeline.states().get("writer") == "RUNNING" and pipeline.pid("writer") != writer,
                 30, "supervisord to restart the writer")
    after = pipeline.count("equity_data")
    wait_for(lambda: pipeline.count("equity_data") > after + 20, 30, "the restarted writer to catch up")
    pipeline.stop_and_reopen()
    assert_exactly_once(pipeline)
    assert_bars_exactly_once(pipeline)
    assert_quotes_exactly_once(pipeline)
    assert_option_snapshots_exactly_once(pipeline)
    assert_no_false_alarm(pipeline)
    assert '"replayed"' in pipeline.log("writer")


#: Three times the writer's longest backoff (10 s): it retries at its cap before the database returns.
OUTAGE_SECONDS = 30


def test_postgres_away_for_half_a_minute(pipeline):
    wait_for(lambda: pipeline.count("equity_data") > 20, 30, "ticks flowing")
    ingest = pipeline.pid("ingest")
    pipeline.stop_postgres()
    outage_started = time.monotonic()
    report_before = pipeline.trades_sent()
    while time.monotonic() - outage_started < OUTAGE_SECONDS:
        time.sleep(1)  # the outage itself is the test: a fixed time, nothing to await
    assert pipeline.trades_sent() > report_before + 100, \
        "ingest kept reading the socket while the database was away"
    pipeline.ctl("start", "embedded:postgres")
    wait_for(lambda: pipeline.count("equity_data") >= report_before + 100, 60, "the writer to catch up")
    assert pipeline.pid("ingest") == ingest, "ingest never stopped"
    pipeline.stop_and_reopen()
    assert_exactly_once(pipeline)
    assert_no_false_alarm(pipeline)
    assert "database unavailable; retrying" in pipeline.log("writer")


@pytest.mark.parametrize("pipeline", [{"BUS_HWM": "2", "rate": 1000}], indirect=True)
def test_slow_writer_behind_a_tiny_high_water_mark(pipeline):
    wait_for(lambda: pipeline.count("equity_data") > 300, 60, "ticks flowing")
    writer = pipeline.pid("writer")
    os.kill(writer, signal.SIGSTOP)  # a writer that stops reading: its queue overflows, frames are dropped
    try:
        sent = pipeline.trades_sent()
        wait_for(lambda: pipeline.trades_sent() > sent + 3000, 60, "the publisher to run far ahead")
    finally:
        os.kill(writer, signal.SIGCONT)
    wait_for(lambda: pipeline.count("equity_data") > sent + 3000, 60, "the writer to catch up")
    pipeline.stop_and_reopen()
    assert_exactly_once(pipeline)  # the indicator sits behind the same tiny mark, and catches up the same way
    stopped = [json.loads(line) for line in pipeline.log("writer").splitlines() if '"msg":"stopped"' in line]
    assert stopped[-1]["replayed"] > 0, "the writer did fall behind and replay from the journal"


#: A shorter outage than the test above: this one is about what the writer says after it, not about its backoff.
CHAOS_OUTAGE_SECONDS = 8


def test_chaos_every_actor_killed_twice_and_the_database_away_nothing_lost_and_no_false_alarm(pipeline):
    wait_for(lambda: pipeline.count("equity_data") > 20, 30, "ticks flowing")
    for round_ in range(2):
        for program in ("ingest", "indicator", "options", "writer", "metrics"):
            pid = pipeline.pid(program)
            os.kill(pid, signal.SIGKILL)
            wait_for(lambda: pipeline.states().get(program) == "RUNNING" and pipeline.pid(program) != pid,
                     30, f"supervisord to restart {program}")
        if round_ == 0:
            pipeline.stop_postgres()
            outage_started = time.monotonic()
            while time.monotonic() - outage_started < CHAOS_OUTAGE_SECONDS:
                time.sleep(1)  # the outage itself is the fault: a fixed time, nothing to await
            pipeline.ctl("start", "embedded:postgres")
    after = pipeline.count("equity_data")
    wait_for(lambda: pipeline.count("equity_data") > after + 20, 60, "the pipeline to store again")
    metrics_before = pipeline.count("streaming_metrics")
    wait_for(lambda: pipeline.count("streaming_metrics") > metrics_before, 30, "metrics rows after the chaos")
    pipeline.stop_and_reopen()
    assert_exactly_once_since_each_connection(pipeline)
    assert_option_snapshots_exactly_once(pipeline)
    assert_no_false_alarm(pipeline)


def assert_exactly_once_since_each_connection(pipeline: Pipeline) -> None:
    """With ingest killed, what it had not read yet died with it; everything else is stored once, in order."""
    stored = pipeline.stored_trades()
    assert len(set(stored)) == len(stored) == pipeline.count("equity_data"), "none twice"
    (indicators,) = pipeline.query("SELECT count(*) FROM indicators")[0]
    assert indicators == len(stored), "one indicator row per stored trade, none twice"
    sent_trades = pipeline.sent_trades()
    connections = sorted({t["connection"] for trades in sent_trades.values() for t in trades})
    assert len(connections) == 3, "ingest's first connection and one after each of its two kills"
    last = {(symbol, t["trade_time_ms"], t["day_volume"], Decimal(str(t["price"])))
            for symbol in TICKERS for t in sent_trades[symbol] if t["connection"] == connections[-1]}
    assert last and last <= set(stored), "everything sent on the last connection is stored"


#: The table whose rows show each program at work (options: the quotes of the contracts it chose).
OUTPUT = {"ingest": "equity_data", "indicator": "indicators", "options": "option_prices"}


def kill_and_await_restart(pipeline: Pipeline, program: str) -> None:
    """SIGKILL `program` once its rows are flowing, wait for supervisord to restart it and for its rows again.

    Its own rows, not just any: a restarted actor is back once it has rebuilt
    from the journal and sends, not when supervisord calls it RUNNING.
    """
    table = OUTPUT[program]
    before = pipeline.count(table)
    wait_for(lambda: pipeline.count(table) > before + 20, 30, f"{program}'s rows flowing")
    pid = pipeline.pid(program)
    os.kill(pid, signal.SIGKILL)
    wait_for(lambda: pipeline.states().get(program) == "RUNNING" and pipeline.pid(program) != pid,
             30, f"supervisord to restart {program}")
    after = pipeline.count(table)
    wait_for(lambda: pipeline.count(table) > after + 20, 30, f"{program}'s rows flowing after its restart")


def journaled(pipeline: Pipeline, prefix: str):
    for frame in read_envelopes(pipeline.var / "data" / "journal" / "ingest"):
        if frame.stream.startswith(prefix):
            yield from frame.records


def test_indicator_and_options_killed_lose_and_double_nothing(pipeline):
    wait_for(lambda: pipeline.count("equity_data") > 20, 30, "ticks flowing")
    kill_and_await_restart(pipeline, "indicator")
    kill_and_await_restart(pipeline, "options")
    pipeline.stop_and_reopen()
    assert_exactly_once(pipeline)
    assert_no_false_alarm(pipeline)

    uninterrupted = IndicatorEngine()
    expected = {}
    for frame in read_envelopes(pipeline.var / "data" / "journal" / "ingest"):
        if frame.stream in (stream("test", "ingest", "trade"), stream("test", "ingest", "bar")):
            for values in uninterrupted.on_records(frame.records).values.values():
                expected.update({(v.symbol, v.trade_time_ms, v.day_volume): (v.vwap, v.sma9) for v in values})
    stored = pipeline.query(
        "SELECT ticker, (extract(epoch FROM timestamp) * 1000)::bigint, day_volume, vwap, sma9 FROM indicators"
    )
    assert len(stored) == len(expected)
    for ticker, time_ms, day_volume, vwap, sma9 in stored:
        want_vwap, want_sma9 = expected[(ticker, time_ms, day_volume)]
        assert float(vwap) == pytest.approx(want_vwap, abs=1e-6)
        assert (sma9 is None) == (want_sma9 is None) and (sma9 is None or float(sma9) == pytest.approx(want_sma9, abs=1e-6))

    assert_option_snapshots_exactly_once(pipeline)


@pytest.mark.parametrize("pipeline", [{"OPTION_STORE_INTERVAL": "0"}], indirect=True)
def test_ingest_killed_loses_nothing_it_had_received(pipeline):
    """With option snapshots off (OPTION_STORE_INTERVAL=0), every option quote ingest journaled is a row too."""
    wait_for(lambda: pipeline.count("equity_data") > 20, 30, "ticks flowing")
    # The band is subscribed once the chain is read, which can come after the first trades.
    wait_for(lambda: pipeline.count("option_prices") > 0, 30, "option quotes flowing")
    kill_and_await_restart(pipeline, "ingest")
    pipeline.stop_and_reopen()
    quotes = {(quote.symbol, quote.quote_time_ms) for quote in journaled(pipeline, stream("test", "ingest", "option"))}
    assert quotes, "options streamed"
    assert pipeline.query("SELECT count(*) FROM option_prices")[0][0] == len(quotes), \
        "every option quote ingest journaled is one row, a restart of ingest or not"
    stored = set(pipeline.stored_trades())
    assert len(stored) == pipeline.count("equity_data"), "none twice"
    sent_trades = pipeline.sent_trades()
    connections = sorted({t["connection"] for trades in sent_trades.values() for t in trades})
    assert len(connections) == 2, "one connection before the kill, one after"
    killed, resumed = connections
    for symbol in TICKERS:
        sent = [(symbol, t["trade_time_ms"], t["day_volume"], Decimal(str(t["price"])))
                for t in sent_trades[symbol]]
        by_connection = {c: [row for row, t in zip(sent, sent_trades[symbol]) if t["connection"] == c]
                         for c in connections}
        assert set(by_connection[resumed]) <= stored, "everything sent after the restart is stored"
        before = by_connection[killed]
        kept = [row for row in before if row in stored]
        # What ingest had read before it died is stored; only the unread tail died with it.
        assert kept == before[: len(kept)] and len(kept) > 0
        assert stored >= set(kept) and {row for row in stored if row[0] == symbol} == set(kept) | set(by_connection[resumed])
