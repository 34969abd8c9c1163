"""`make bench`: the whole pipeline against the simulator, measured.

Runs the shipped supervisord.conf at a fixed simulator rate (BENCH_RATE
updates per second, default 1000) and, after a warm-up, measures a window of
BENCH_SECONDS (default 30). Prints one JSON object:

- ticks_per_second_stored: equity ticks committed per second in the window
- latency_ms_p50 / _p99: tick-to-commit, from ingest reading the tick
  (received_at) to its row being inserted (inserted_at, in the commit)
- cpu_us_per_tick: user+system CPU of the five actors (Postgres and the
  simulator excluded) in the window, divided by ticks stored in it
- pss_mb: each actor's proportional set size at the end of the window
- ticks_sent / ticks_stored: after `supervisorctl stop all`, what the
  simulator says it sent and what the table holds
- journal_bytes_per_tick: bytes the journaling actors wrote per stored tick
  (every frame they send is journaled: quotes, bars, options, indicators too)
"""

from __future__ import annotations

import json
import os
import time

import psutil

from tests.harness import ACTOR_PROGRAMS, Pipeline, wait_for

WARMUP = 5.0


def cpu_seconds(processes: dict[str, psutil.Process]) -> float:
    return sum(p.cpu_times().user + p.cpu_times().system for p in processes.values())


def journal_bytes(pipeline: Pipeline) -> int:
    """Everything the journaling actors wrote (ingest, indicator, options)."""
    return sum(path.stat().st_size for path in (pipeline.var / "data" / "journal").rglob("*.journal"))


def measure_outage(pipeline: Pipeline, seconds: float) -> dict[str, float]:
    """Take Postgres away for `seconds` while streaming, then time the writer's catch-up."""
    pipeline.stop_postgres()
    time.sleep(seconds)  # the outage is the measurement: nothing to await
    sent_by_restart = pipeline.trades_sent()
    pipeline.ctl("start", "embedded:postgres")
    stored_before = wait_for(lambda: pipeline.count("equity_data"), 60, "Postgres to come back")
    started = time.monotonic()
    wait_for(lambda: pipeline.count("equity_data") >= sent_by_restart, 3600, "the writer to catch up", interval=0.5)
    elapsed = time.monotonic() - started
    caught_up = pipeline.count("equity_data") - stored_before
    return {"outage_seconds": seconds, "catch_up_rows": caught_up, "catch_up_seconds": round(elapsed, 1),
            "catch_up_rows_per_second": round(caught_up / elapsed, 1)}


def main() -> None:
    rate = int(os.environ.get("BENCH_RATE", "1000"))
    window = float(os.environ.get("BENCH_SECONDS", "30"))
    tickers = os.environ.get("BENCH_TICKERS", "SPY,QQQ,AAPL,MSFT")
    outage = float(os.environ.get("BENCH_OUTAGE_SECONDS", "0"))
    pipeline = Pipeline(tickers=tickers, rate=rate).start()
    try:
        wait_for(lambda: pipeline.count("equity_data"), 60, "the first stored tick")
        time.sleep(WARMUP)  # a benchmark window, not a test condition: nothing to await
        actors = {name: psutil.Process(pipeline.pid(name)) for name in ACTOR_PROGRAMS}
        cpu_before, rows_before, started = cpu_seconds(actors), pipeline.count("equity_data"), time.monotonic()
        time.sleep(window)
        cpu_after, rows_after, elapsed = cpu_seconds(actors), pipeline.count("equity_data"), time.monotonic() - started
        pss = {name: round(p.memory_full_info().pss / 2**20, 1) for name, p in actors.items()}
        stored_in_window = rows_after - rows_before
        p50, p99 = pipeline.query(
            "SELECT percentile_cont(0.5) WITHIN GROUP (ORDER BY ms), percentile_cont(0.99) WITHIN GROUP (ORDER BY ms)"
            " FROM (SELECT extract(epoch FROM inserted_at - received_at) * 1000 AS ms FROM equity_data"
            "       ORDER BY id DESC LIMIT %s) recent",
            (max(stored_in_window, 1),),
        )[0]
        if outage:
            result_outage = measure_outage(pipeline, outage)
        pipeline.stop_all()
        pipeline.ctl("start", "embedded:postgres")
        wait_for(lambda: pipeline.count("equity_data"), 30, "Postgres to come back")
        report = pipeline.report()
        result = {
            "rate_updates_per_second": rate,
            "window_seconds": round(elapsed, 1),
            "tickers": tickers.split(","),
            "ticks_per_second_stored": round(stored_in_window / elapsed, 1),
            "latency_ms_p50": round(float(p50), 2),
            "latency_ms_p99": round(float(p99), 2),
            "cpu_us_per_tick": round((cpu_after - cpu_before) * 1e6 / max(stored_in_window, 1), 1),
            "pss_mb": pss,
            "ticks_sent": report["counts"]["trades"],
            "ticks_stored": pipeline.count("equity_data"),
            "journal_bytes_per_tick": round(journal_bytes(pipeline) / max(pipeline.count("equity_data"), 1), 1),
        }
        if outage:
            result.update(result_outage)
        print(json.dumps(result))
    finally:
        pipeline.shutdown()


if __name__ == "__main__":
    main()
