"""`make bench`: the whole pipeline against the simulator, measured, and the same work in one process.

    nice python -m tests.bench          # prints one JSON object on stdout; progress on stderr

For each shape (a number of tickers, all at BENCH_RATE equity updates per
second across them), one after the other:

1. **pipeline**: the shipped supervisord.conf (`tests/helpers/harness.py`: embedded
   Postgres, the simulator, the five actors) with the shipped STATS_INTERVAL,
   METRICS_INTERVAL, HEARTBEAT_INTERVAL and OPTION_STORE_INTERVAL (the
   harness's faster test values are put back). Once the options actor's contracts stream and after
   BENCH_WARMUP seconds, a window of BENCH_SECONDS is measured.
2. **script**: `tests/bench_script.py`, the same work in one plain process
   (the real schwab-py client, ingest's login and fields, the same option
   contracts, SMA9/VWAP inline, a COPY every BATCH_INTERVAL), against a fresh
   simulator with the same seed, rate and tickers and a database of its
   own, migrated like the pipeline's; measured the same way.

Then **idle**: a pipeline started with MARKET_HOURS=exchange and a
MARKET_CLOCK on a closed day (BENCH_IDLE_CLOCK, a Saturday), measured for
BENCH_IDLE_SECONDS after ingest has logged out and BENCH_IDLE_SETTLE seconds.

The JSON object:

- `shapes.<N>_tickers.pipeline` / `.script`, over the window:
  - `cpu_us_per_tick`: user+system CPU of each process (each actor, and
    `all_actors`; or `script`) divided by equity ticks stored in the window.
    Postgres and the simulator are not counted.
  - `simulator_cpu_percent_of_core`: the simulator's own CPU, to show it is not the ceiling
  - `ticks_per_second_stored`, and `rows_per_second_stored` per table
    (equity_data, indicators: the same work in both; option_prices: the
    pipeline stores a snapshot per contract per OPTION_STORE_INTERVAL, the
    script every quote, as the pipeline did before snapshots)
  - `latency_ms_p50` / `_p99`: tick-to-commit, from reading the tick
    (received_at) to its row's commit (inserted_at), over the ticks committed in the window
  - `pss_mb`: proportional set size per process at the end of the window
  - `journal_bytes_per_tick` (pipeline): journal bytes written in the window
    per tick stored in it (bars, option quotes and indicator values are journaled too)
  - `option_contracts`: LEVELONE_OPTIONS contracts streamed
  - `ticks_sent` / `ticks_stored` / `sent_equals_stored`: after the stop
    (`supervisorctl stop all`; SIGTERM to the script), what the simulator
    says it sent and what equity_data holds
- `shapes.<N>_tickers.cpu_ratio_actors_to_script`: all actors' CPU per tick / the script's
- `idle_market_closed.cpu_percent_of_core`: each actor and `all_actors`, as a percentage of one core
- `replay`: the last (largest) shape's pipeline run recorded by ingest (STREAM_RECORD),
  replayed (STREAM_SOURCE=replay) into a fresh pipeline as fast as it takes it:
  `ticks_per_second_stored` from the first trade read to the last commit,
  `sent_equals_stored` (the recording pipeline's stored ticks against the replay's),
  ingest's own read rate and PSS per actor; `replay_peak_ticks_per_second_stored` repeats the rate

Settings (environment):

- BENCH_SHAPES: comma-separated ticker counts, one shape each (default `4,200`)
- BENCH_TICKERS: the first symbols of every shape (default `SPY,QQQ,AAPL,MSFT`);
  the rest are the simulator's familiar symbols, then 3-4 letter symbols from
  a fixed seed (`tickers_for`), the same in every run
- BENCH_RATE: simulated equity updates per second, across all tickers (default 1000)
- BENCH_SECONDS: each measured window (default 20)
- BENCH_WARMUP: seconds between the options streaming and the window (default 5)
- BENCH_SEED: the simulator's seed (default 7)
- BENCH_SCRIPT: 0 skips the one-process baseline (default 1)
- BENCH_IDLE_SECONDS: the idle window; 0 skips it (default 20)
- BENCH_IDLE_SETTLE: seconds between ingest's logout and the idle window (default 5)
- BENCH_IDLE_CLOCK: MARKET_CLOCK of the idle pipeline (default `2026-11-28T12:00:00-05:00`, a Saturday)
- BENCH_REPLAY: 0 skips the replay peak (default 1)
- BENCH_OUTAGE_SECONDS: after each pipeline window, stop Postgres this long
  and time the writer's catch-up (default 0: no outage)

Run it alone and nice'd: it keeps both cores of a small machine busy.
"""

from __future__ import annotations

import functools
import json
import os
import random
import shutil
import signal
import string
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import psutil
import psycopg

from common.config import BY_NAME, embedded_database_url
from common.feed.services.levelone_options import SERVICE as OPTIONS
from common.simulator.market import KNOWN
from common.store.localpg import LocalPostgres
from common.symbols import EQUITY
from common.symbols import kind_of as instrument
from tests.helpers.harness import (
    ACTOR_PROGRAMS,
    OUTSIDE_SETTINGS,
    ROOT,
    Pipeline,
    cluster_template,
    free_port,
    wait_for,
)

#: The harness speeds these up for tests; the bench measures what ships.
SHIPPED = {name: BY_NAME[name].default
           for name in ("STATS_INTERVAL", "METRICS_INTERVAL", "HEARTBEAT_INTERVAL", "OPTION_STORE_INTERVAL")}
TABLES = ("equity_data", "indicators", "option_prices")
FIRST_TICKERS = "SPY,QQQ,AAPL,MSFT"
#: Reading 200 option chains from the simulator takes a minute or more on a busy small machine.
OPTIONS_TIMEOUT = 600.0

Query = Callable[[str, tuple], list[tuple]]


def setting(name: str, default: str) -> str:
    return os.environ.get(name, "").strip() or default


_STARTED = time.monotonic()


def progress(message: str) -> None:
    print(f"bench: {time.monotonic() - _STARTED:6.1f} s  {message}", file=sys.stderr, flush=True)


def tickers_for(count: int, first: str = FIRST_TICKERS) -> list[str]:
    """`count` symbols: `first`, the simulator's familiar stocks, then 3-4 letters from a fixed seed (the shapes
    stay stocks, as every earlier run measured them; name an index or a future in BENCH_TICKERS to add one)."""
    stocks = [symbol for symbol in KNOWN if instrument(symbol) == EQUITY]
    symbols = list(dict.fromkeys([*(s.strip().upper() for s in first.split(",") if s.strip()), *stocks]))
    rng = random.Random("make bench tickers")
    while len(symbols) < count:
        symbol = "".join(rng.choices(string.ascii_uppercase, k=rng.choice((3, 4))))
        if symbol not in symbols:
            symbols.append(symbol)
    return symbols[:count]


def cpu_seconds(process: psutil.Process) -> float:
    times = process.cpu_times()
    return times.user + times.system


def row_counts(query: Query) -> dict[str, int]:
    row = query("SELECT " + ", ".join(f"(SELECT count(*) FROM {table})" for table in TABLES), ())[0]
    return dict(zip(TABLES, row))


def log_lines(path: Path) -> list[dict[str, Any]]:
    """The JSON lines of a log file (anything else skipped)."""
    lines = []
    if path.exists():
        for line in path.read_text().splitlines():
            try:
                lines.append(json.loads(line))
            except ValueError:
                continue
    return lines


def journal_bytes(var: Path) -> int:
    """Everything the journaling actors have written (ingest, indicator)."""
    return sum(path.stat().st_size for path in (var / "data" / "journal").rglob("*.journal"))


def measure(processes: dict[str, psutil.Process], simulator: psutil.Process, query: Query, window: float,
            between: Callable[[], Any] = lambda: None) -> dict[str, Any]:
    """CPU, stored rows, latency and memory over one window of `window` seconds.

    `between` runs at both ends of the window; its two results come back as `between`.
    """
    marks = [between()]
    cpu_before = {name: cpu_seconds(process) for name, process in processes.items()}
    sim_before, rows_before, started, opened = cpu_seconds(simulator), row_counts(query), time.monotonic(), time.time()
    time.sleep(window)  # the window is the measurement: nothing to await
    cpu_after = {name: cpu_seconds(process) for name, process in processes.items()}
    sim_after, rows_after, elapsed = cpu_seconds(simulator), row_counts(query), time.monotonic() - started
    closed = time.time()
    marks.append(between())
    pss = {name: round(process.memory_full_info().pss / 2**20, 1) for name, process in processes.items()}
    stored = {table: rows_after[table] - rows_before[table] for table in TABLES}
    ticks = max(stored["equity_data"], 1)
    p50, p99 = query(
        "SELECT percentile_cont(0.5) WITHIN GROUP (ORDER BY ms), percentile_cont(0.99) WITHIN GROUP (ORDER BY ms)"
        " FROM (SELECT extract(epoch FROM inserted_at - received_at) * 1000 AS ms FROM equity_data"
        "       WHERE inserted_at >= to_timestamp(%s) AND inserted_at < to_timestamp(%s)) committed_in_window",
        (opened, closed),
    )[0]
    cpu = {name: round((cpu_after[name] - cpu_before[name]) * 1e6 / ticks, 1) for name in processes}
    return {
        "window_seconds": round(elapsed, 1),
        "ticks_per_second_stored": round(stored["equity_data"] / elapsed, 1),
        "rows_per_second_stored": {table: round(count / elapsed, 1) for table, count in stored.items()},
        "latency_ms_p50": round(float(p50 or 0), 2),
        "latency_ms_p99": round(float(p99 or 0), 2),
        "cpu_us_per_tick": cpu,
        "cpu_seconds_per_second": round(sum(cpu_after[n] - cpu_before[n] for n in processes) / elapsed, 3),
        "simulator_cpu_percent_of_core": round((sim_after - sim_before) * 100 / elapsed, 1),
        "pss_mb": pss,
        "between": marks,
        "ticks_in_window": stored["equity_data"],
    }


# ---- the pipeline ----------------------------------------------------------------------------------------------

def options_streaming(pipeline: Pipeline, tickers: list[str]) -> int | None:
    """Contracts ingest streams, once the options actor has tried every chain (a stock's or an index's: a future's
    options are another service) and ingest has subscribed some."""
    tried = {line.get("ticker") for line in log_lines(pipeline.var / "log" / "options.log")
             if line.get("msg") in ("option contracts chosen", "no option contracts chosen")}
    changed = [line for line in log_lines(pipeline.var / "log" / "ingest.log")
               if line.get("msg") == "option contracts changed"]
    if len(tried) >= len([ticker for ticker in tickers if instrument(ticker) in OPTIONS.instruments]) and changed:
        return int(changed[-1].get("streaming", 0))
    return None


def program_processes(pipeline: Pipeline) -> dict[str, psutil.Process]:
    """Every running program's process, from one `supervisorctl status` ("pipeline:ingest RUNNING pid 4108, ...")."""
    processes = {}
    for line in pipeline.ctl("status", check=False).splitlines():
        fields = line.replace(",", " ").split()
        if len(fields) >= 4 and fields[1] == "RUNNING" and fields[2] == "pid":
            processes[fields[0].split(":")[-1]] = psutil.Process(int(fields[3]))
    return processes


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


def bench_pipeline(tickers: list[str], rate: int, seed: int, window: float, warmup: float,
                   outage: float, record: Path | None = None) -> dict[str, Any]:
    """One shape through the shipped pipeline; with `record`, ingest records what it receives there."""
    recording = {"STREAM_RECORD": str(record)} if record else {}
    pipeline = Pipeline(tickers=",".join(tickers), rate=rate, seed=seed, **SHIPPED, **recording).start()
    try:
        wait_for(lambda: pipeline.count("equity_data"), 60, "the first stored tick")
        progress(f"pipeline, {len(tickers)} tickers: storing ticks; waiting for the options actor's contracts")
        wait_for(lambda: options_streaming(pipeline, tickers) is not None, OPTIONS_TIMEOUT,
                 "the options actor's contracts to stream", interval=0.5)
        time.sleep(warmup)  # a benchmark's warm-up, not a test condition: nothing to await
        running = program_processes(pipeline)
        actors, simulator = {name: running[name] for name in ACTOR_PROGRAMS}, running["simulator"]
        progress(f"pipeline, {len(tickers)} tickers: measuring {window:g} s")
        result = measure(actors, simulator, pipeline.query, window, lambda: journal_bytes(pipeline.var))
        journal_before, journal_after = result.pop("between")
        ticks = max(result.pop("ticks_in_window"), 1)
        result["cpu_us_per_tick"]["all_actors"] = round(sum(result["cpu_us_per_tick"].values()), 1)
        result["journal_bytes_per_tick"] = round((journal_after - journal_before) / ticks, 1)
        result["option_contracts"] = options_streaming(pipeline, tickers)
        restarted = [name for name, process in actors.items() if not process.is_running()]
        if restarted:
            result["restarted_during_window"] = restarted
        if outage:
            result.update(measure_outage(pipeline, outage))
        progress(f"pipeline, {len(tickers)} tickers: stopping")
        pipeline.stop_and_reopen()
        progress(f"pipeline, {len(tickers)} tickers: stopped")
        result["ticks_sent"] = pipeline.report()["counts"]["trades"]
        result["ticks_stored"] = pipeline.count("equity_data")
        result["sent_equals_stored"] = result["ticks_sent"] == result["ticks_stored"]
        return result
    finally:
        pipeline.shutdown()


# ---- the one-process script ----------------------------------------------------------------------------------

def script_event(log: Path, event: str) -> dict[str, Any] | None:
    return next((line for line in reversed(log_lines(log)) if line.get("event") == event), None)


def stop_process(process: subprocess.Popen, timeout: float, what: str) -> int:
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
    try:
        return process.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()
        raise AssertionError(f"{what} did not stop within {timeout:g} s of SIGTERM") from None


def bench_script(tickers: list[str], rate: int, seed: int, window: float, warmup: float) -> dict[str, Any]:
    """tests/bench_script.py against a fresh simulator (same seed, rate, tickers) and a database of its own."""
    var = Path(tempfile.mkdtemp(prefix="ssbench", dir="/tmp"))
    for sub in ("log", "data"):
        (var / sub).mkdir()
    (var / "run").mkdir(mode=0o700)
    cluster = LocalPostgres(var / "pg")
    sim_port = free_port()
    env = {
        **{name: value for name, value in os.environ.items() if name not in OUTSIDE_SETTINGS},
        "STREAMING_VAR": str(var),
        "STREAM_TICKERS": ",".join(tickers),
        "SIM_PORT": str(sim_port),
        "SIM_WS_PORT": str(free_port()),
        "SIM_RATE": str(rate),
        "SIM_SEED": str(seed),
        "SIM_TRADE_LOG": str(var / "run" / "simulator-trades.jsonl"),  # as the pipeline's simulator has one
        "SIMULATOR_URL": f"http://127.0.0.1:{sim_port}",
        **SHIPPED,
    }
    report = var / "run" / "simulator-report.json"
    script_log = var / "log" / "script.log"
    processes: list[subprocess.Popen] = []
    query: Query = functools.partial(_query, embedded_database_url(var))
    try:
        cluster.init(template=cluster_template())
        cluster.start()
        with (var / "log" / "simulator.log").open("w") as sim_out:
            simulator = subprocess.Popen([sys.executable, "-m", "common.simulator", "--report", str(report)],
                                         env=env, cwd=ROOT, stdout=sim_out, stderr=subprocess.STDOUT)
        processes.append(simulator)
        migrated = subprocess.run([sys.executable, "-m", "common.store.migrate", "--wait", "60"],
                                  env=env, cwd=ROOT, capture_output=True, text=True, check=False)
        if migrated.returncode != 0:
            raise AssertionError(f"migrations failed: {migrated.stderr}")
        with script_log.open("w") as out:
            script = subprocess.Popen([sys.executable, "-m", "tests.bench_script"],
                                      env=env, cwd=ROOT, stdout=out, stderr=subprocess.STDOUT)
        processes.append(script)
        wait_for(lambda: script_event(script_log, "streaming") or script.poll() is not None, OPTIONS_TIMEOUT,
                 "the script to stream", interval=0.5)
        if script.poll() is not None:
            raise AssertionError(f"the script exited: {script_log.read_text()[-3000:]}")
        try:
            wait_for(lambda: row_counts(query)["equity_data"], 60, "the script's first stored tick")
        except AssertionError as error:
            raise AssertionError(f"{error}; the script's log ends: {script_log.read_text()[-3000:]}") from None
        time.sleep(warmup)  # a benchmark's warm-up, not a test condition: nothing to await
        progress(f"script, {len(tickers)} tickers: measuring {window:g} s")
        result = measure({"script": psutil.Process(script.pid)}, psutil.Process(simulator.pid), query, window)
        del result["between"], result["ticks_in_window"]
        result["option_contracts"] = script_event(script_log, "streaming")["option_contracts"]
        changed = script_event(script_log, "option contracts changed")
        if changed:
            result["option_contracts"] = changed["streaming"]
        progress(f"script, {len(tickers)} tickers: stopping")
        if stop_process(script, 60, "the script") != 0:
            raise AssertionError(f"the script failed: {script_log.read_text()[-3000:]}")
        if stop_process(simulator, 15, "the simulator") != 0:
            raise AssertionError(f"the simulator failed: {(var / 'log' / 'simulator.log').read_text()[-3000:]}")
        stopped = script_event(script_log, "stopped") or {}
        result["items_left_out"] = stopped.get("errors")  # incomplete updates and rows a table refused
        result["ticks_sent"] = json.loads(report.read_text())["counts"]["trades"]
        result["ticks_stored"] = row_counts(query)["equity_data"]
        result["sent_equals_stored"] = result["ticks_sent"] == result["ticks_stored"]
        return result
    finally:
        for process in reversed(processes):
            if process.poll() is None:
                process.kill()
                process.wait()
        cluster.remove()
        shutil.rmtree(var, ignore_errors=True)


def _query(url: str, sql: str, params: tuple) -> list[tuple]:
    with psycopg.connect(url, connect_timeout=5) as connection:
        return connection.execute(sql, params).fetchall()


# ---- idle ----------------------------------------------------------------------------------------------------

def bench_idle(tickers: list[str], rate: int, seed: int, seconds: float, settle: float, clock: str) -> dict[str, Any]:
    """All actors' CPU while the market is closed: ingest logged out, everyone waiting."""
    pipeline = Pipeline(tickers=",".join(tickers), rate=rate, seed=seed, MARKET_HOURS="exchange",
                        MARKET_CLOCK=clock, **SHIPPED).start()
    try:
        wait_for(lambda: any(line.get("msg", "").startswith("market closed")
                             for line in log_lines(pipeline.var / "log" / "ingest.log")),
                 60, "ingest to see the market closed")
        wait_for(lambda: all(pipeline.states().get(name) == "RUNNING" for name in ACTOR_PROGRAMS),
                 60, "every actor running")
        time.sleep(settle)  # a benchmark's settle, not a test condition: nothing to await
        running = program_processes(pipeline)
        actors, simulator = {name: running[name] for name in ACTOR_PROGRAMS}, running["simulator"]
        progress(f"idle, market closed: measuring {seconds:g} s")
        before = {name: cpu_seconds(process) for name, process in actors.items()}
        sim_before, started = cpu_seconds(simulator), time.monotonic()
        time.sleep(seconds)  # the window is the measurement: nothing to await
        after = {name: cpu_seconds(process) for name, process in actors.items()}
        sim_after, elapsed = cpu_seconds(simulator), time.monotonic() - started
        percent = {name: round((after[name] - before[name]) * 100 / elapsed, 2) for name in actors}
        percent["all_actors"] = round(sum(after[n] - before[n] for n in actors) * 100 / elapsed, 2)
        return {
            "market_clock": clock,
            "window_seconds": round(elapsed, 1),
            "cpu_percent_of_core": percent,
            "simulator_cpu_percent_of_core": round((sim_after - sim_before) * 100 / elapsed, 2),
            "pss_mb": {name: round(process.memory_full_info().pss / 2**20, 1) for name, process in actors.items()},
        }
    finally:
        pipeline.shutdown()


# ---- the replay peak ------------------------------------------------------------------------------------------

def bench_replay(tickers: list[str], recording: Path, recorded_ticks: int) -> dict[str, Any]:
    """A recording replayed as fast as the pipeline takes it: ticks stored per second, end to end.

    The rate is measured in the database: stored trades over the time from
    the first trade ingest read from the file (received_at) to the last
    commit (inserted_at). `recorded_ticks` is what the recording pipeline
    stored: the replay must store exactly as many.
    """
    pipeline = Pipeline(tickers=",".join(tickers), STREAM_SOURCE="replay", STREAM_REPLAY=str(recording),
                        EMBEDDED_SIM="false", **SHIPPED).start()
    try:
        finished = wait_for(pipeline.replay_finished, 600, "the replay to read its recording", interval=0.5)
        wait_for(lambda: pipeline.count("equity_data") >= recorded_ticks, 600, "the replay's trades stored",
                 interval=0.5)
        running = program_processes(pipeline)
        pss = {name: round(running[name].memory_full_info().pss / 2**20, 1) for name in ACTOR_PROGRAMS}
        stored, seconds = pipeline.query(
            "SELECT count(*), extract(epoch FROM max(inserted_at) - min(received_at)) FROM equity_data")[0]
        return {
            "recording_lines": finished["lines"],
            "ticks_sent": recorded_ticks,
            "ticks_stored": stored,
            "sent_equals_stored": stored == recorded_ticks,
            "seconds_first_read_to_last_commit": round(float(seconds), 2),
            "ticks_per_second_stored": round(stored / float(seconds), 1),
            "ingest_read_records_per_second": finished["records_per_second"],
            "pss_mb": pss,
        }
    finally:
        pipeline.shutdown()


# ---- all of it -----------------------------------------------------------------------------------------------

def main() -> None:
    started = time.monotonic()
    rate = int(setting("BENCH_RATE", "1000"))
    window = float(setting("BENCH_SECONDS", "20"))
    warmup = float(setting("BENCH_WARMUP", "5"))
    seed = int(setting("BENCH_SEED", "7"))
    first = setting("BENCH_TICKERS", FIRST_TICKERS)
    shapes = [int(count) for count in setting("BENCH_SHAPES", "4,200").split(",") if count.strip()]
    with_script = setting("BENCH_SCRIPT", "1") != "0"
    idle_seconds = float(setting("BENCH_IDLE_SECONDS", "20"))
    idle_settle = float(setting("BENCH_IDLE_SETTLE", "5"))
    idle_clock = setting("BENCH_IDLE_CLOCK", "2026-11-28T12:00:00-05:00")
    outage = float(setting("BENCH_OUTAGE_SECONDS", "0"))

    result: dict[str, Any] = {"rate_updates_per_second": rate, "window_seconds": window, "seed": seed, "shapes": {}}
    recordings = Path(tempfile.mkdtemp(prefix="bench-recording-"))
    recording = recordings / "frames.jsonl"
    replayed: tuple[list[str], int] | None = None
    for count in shapes:
        tickers = tickers_for(count, first)
        shape: dict[str, Any] = {"ticker_count": len(tickers)}
        shape["tickers"] = tickers if len(tickers) <= 8 else [*tickers[:8], f"... {len(tickers) - 8} more"]
        progress(f"pipeline, {count} tickers: starting")
        last = count == shapes[-1]  # the largest feed is recorded for the replay peak
        shape["pipeline"] = bench_pipeline(tickers, rate, seed, window, warmup, outage, recording if last else None)
        if last:
            replayed = tickers, shape["pipeline"]["ticks_stored"]
        if with_script:
            progress(f"script, {count} tickers: starting")
            shape["script"] = bench_script(tickers, rate, seed, window, warmup)
            script_cpu = shape["script"]["cpu_us_per_tick"]["script"]
            shape["cpu_ratio_actors_to_script"] = round(
                shape["pipeline"]["cpu_us_per_tick"]["all_actors"] / max(script_cpu, 0.1), 2)
        result["shapes"][f"{count}_tickers"] = shape
    if idle_seconds:
        progress("idle, market closed: starting")
        result["idle_market_closed"] = bench_idle(tickers_for(shapes[0] if shapes else 4, first), rate, seed,
                                                  idle_seconds, idle_settle, idle_clock)
    if replayed and setting("BENCH_REPLAY", "1") != "0":
        progress(f"replay of the {len(replayed[0])}-ticker recording: starting")
        result["replay"] = bench_replay(replayed[0], recording, replayed[1])
        result["replay_peak_ticks_per_second_stored"] = result["replay"]["ticks_per_second_stored"]
    shutil.rmtree(recordings, ignore_errors=True)
    result["bench_seconds"] = round(time.monotonic() - started, 1)
    print(json.dumps(result))


if __name__ == "__main__":
    main()
