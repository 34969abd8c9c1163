"""The Schwab simulator's CPU at a given shape: a measurement, not a test.

    nice -n 10 python -m tests.sim_cpu [--rate 1000] [--tickers 200] [--options 500] [--fields pipeline|all]
                                       [--warmup 10] [--seconds 30] [--root CHECKOUT] [--py-spy OUT]

Starts `python -m common.simulator` from CHECKOUT (default: this one; a `git
worktree` of an older commit measures older code the same way) at --rate
equity updates a second, and streams to the real schwab-py client what the
pipeline asks for: --tickers equities (LEVELONE_EQUITIES with the ingest
actor's fields, or every field with `--fields all`) and their CHART_EQUITY,
plus up to --options LEVELONE_OPTIONS contracts, chosen as the options actor
chooses them (the nearest expiry's strikes within 2 % of the underlying,
ticker by ticker; one connection holds at most 500 keys per service).

After --warmup seconds it measures the simulator's CPU over --seconds
(process CPU seconds / wall seconds, from psutil: 1.0 is one core busy) and
the client's, and checks the client kept up: everything the report says was
sent had arrived. `--py-spy OUT` records a py-spy profile of the simulator
(raw, collapsed stacks) over the same window. Prints one JSON object.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

import httpx
import psutil
from schwab.streaming import StreamClient

from common import config as config_module
from common.analytics.option_chain import ChainError, decode_chain, select_contracts
from common.feed.schwab_client import make_client, make_stream_client
from tests.helpers.harness import free_port, wait_for
from tests.helpers.simulator_process import ROOT, answers, log_out
from tests.sim_soak import tickers

BAND = 0.02
_EQ, _OPT = StreamClient.LevelOneEquityFields, StreamClient.LevelOneOptionFields
#: The level-one fields the ingest actor asks for (as of this writing).
EQUITY_FIELDS = [_EQ.SYMBOL, _EQ.BID_PRICE, _EQ.ASK_PRICE, _EQ.LAST_PRICE, _EQ.BID_SIZE, _EQ.ASK_SIZE,
                 _EQ.TOTAL_VOLUME, _EQ.LAST_SIZE, _EQ.QUOTE_TIME_MILLIS, _EQ.TRADE_TIME_MILLIS]
OPTION_FIELDS = [_OPT.SYMBOL, _OPT.BID_PRICE, _OPT.ASK_PRICE, _OPT.LAST_PRICE, _OPT.TOTAL_VOLUME,
                 _OPT.OPEN_INTEREST, _OPT.VOLATILITY, _OPT.EXPIRATION_YEAR, _OPT.STRIKE_TYPE,
                 _OPT.CONTRACT_TYPE, _OPT.UNDERLYING, _OPT.EXPIRATION_MONTH, _OPT.EXPIRATION_DAY,
                 _OPT.DELTA, _OPT.GAMMA, _OPT.THETA, _OPT.VEGA, _OPT.RHO, _OPT.UNDERLYING_PRICE,
                 _OPT.MARK, _OPT.QUOTE_TIME_MILLIS]


def cpu_seconds(process: psutil.Process) -> float:
    times = process.cpu_times()
    return times.user + times.system


async def choose_contracts(client, symbols: list[str], count: int) -> list[str]:
    """Up to `count` contracts, ticker by ticker, each the nearest expiry's band as the options actor picks it."""
    today = datetime.date.today()
    chosen: list[str] = []
    for symbol in symbols:
        if len(chosen) >= count:
            break
        response = await client.get_option_chain(symbol, from_date=today, to_date=today + datetime.timedelta(days=10))
        try:
            chosen += select_contracts(decode_chain(response.content), BAND, today)[1]
        except ChainError:
            continue
    return chosen[:count]


async def measure(args: argparse.Namespace, url: str, simulator: psutil.Process, workdir: Path) -> dict:
    config = config_module.load({"SIMULATOR_URL": url, "SCHWAB_TOKEN_PATH": str(workdir / "token.json")})
    client = make_client(config, asyncio=True)
    stream = make_stream_client(client)
    received: Counter[str] = Counter()
    frames: Counter[str] = Counter()

    def count(service: str):
        def handler(message: dict) -> None:
            frames[service] += 1
            received[service] += len(message["content"])
        return handler

    stream.add_level_one_equity_handler(count("LEVELONE_EQUITIES"))
    stream.add_level_one_option_handler(count("LEVELONE_OPTIONS"))
    stream.add_chart_equity_handler(count("CHART_EQUITY"))
    symbols = tickers(args.tickers)
    contracts = await choose_contracts(client, symbols, args.options) if args.options else []
    pipeline = args.fields == "pipeline"
    await stream.login()
    await stream.level_one_equity_subs(symbols, fields=list(EQUITY_FIELDS) if pipeline else None)
    await stream.chart_equity_subs(symbols)
    if contracts:
        await stream.level_one_option_subs(contracts, fields=list(OPTION_FIELDS) if pipeline else None)

    async def pump() -> None:
        while True:
            await stream.handle_message()

    pumping = asyncio.create_task(pump())
    me = psutil.Process()
    await asyncio.sleep(args.warmup)
    before_report = httpx.get(f"{url}/sim/report").json()
    sim_cpu, my_cpu, wall, got = cpu_seconds(simulator), cpu_seconds(me), time.monotonic(), received.copy()
    spy = None
    if args.py_spy:
        spy = subprocess.Popen([str(Path(sys.executable).parent / "py-spy"), "record", "-d", str(int(args.seconds)),
                                "-r", "100", "--nonblocking", "-f", "raw", "-o", str(args.py_spy),
                                "-p", str(simulator.pid)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    await asyncio.sleep(args.seconds)
    sim_cpu, my_cpu = cpu_seconds(simulator) - sim_cpu, cpu_seconds(me) - my_cpu
    wall = time.monotonic() - wall
    window = {service: received[service] - got[service] for service in received}
    after_report = httpx.get(f"{url}/sim/report").json()
    if spy:
        await asyncio.to_thread(spy.wait)
    assert not pumping.done(), pumping.exception()
    pumping.cancel()
    await asyncio.gather(pumping, return_exceptions=True)
    await log_out(stream, client)  # everything sent before the logout, then the close
    report = httpx.get(f"{url}/sim/report").json()
    sent = {service: counts["items"] for service, counts in report["services"].items()}
    sent_in_window = {service: after_report["services"][service]["items"]
                      - before_report["services"].get(service, {}).get("items", 0)
                      for service in after_report["services"]}
    return {
        "code": str(args.root), "rate": args.rate, "tickers": len(symbols), "option_contracts": len(contracts),
        "fields": args.fields, "seconds": round(wall, 1),
        "simulator_cpu": round(sim_cpu / wall, 3),
        "client_cpu": round(my_cpu / wall, 3),
        "items_per_second": {service: round(n / wall, 1) for service, n in sorted(window.items())},
        "sent_per_second": {service: round(n / wall, 1) for service, n in sorted(sent_in_window.items())},
        "frames": dict(frames),
        "client_kept_up": all(received[service] == n for service, n in sent.items()),
        "counts": report["counts"],
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m tests.sim_cpu", description=__doc__.splitlines()[0])
    parser.add_argument("--rate", type=float, default=1000.0, help="the simulator's equity updates per second")
    parser.add_argument("--tickers", type=int, default=200)
    parser.add_argument("--options", type=int, default=500, help="option contracts subscribed (at most 500)")
    parser.add_argument("--fields", choices=("pipeline", "all"), default="pipeline",
                        help="the ingest actor's level-one fields, or every field (schwab-py's default)")
    parser.add_argument("--warmup", type=float, default=10.0)
    parser.add_argument("--seconds", type=float, default=30.0)
    parser.add_argument("--root", type=Path, default=ROOT, help="the checkout whose simulator runs")
    parser.add_argument("--py-spy", type=Path, help="record a py-spy profile of the simulator here (raw format)")
    args = parser.parse_args(argv)
    port, ws_port = free_port(), free_port()
    command = [sys.executable, "-m", "common.simulator", "--port", str(port), "--ws-port", str(ws_port),
               "--rate", str(args.rate), "--seed", "42"]
    with tempfile.TemporaryDirectory(prefix="sim-cpu") as workdir:
        with open(Path(workdir) / "simulator.log", "w") as log:
            process = subprocess.Popen(command, cwd=args.root, stdout=log, stderr=subprocess.STDOUT,
                                       env={**os.environ, "PYTHONPATH": str(args.root)})
        url = f"http://127.0.0.1:{port}"
        try:
            wait_for(lambda: answers(url) or process.poll() is not None, 15, "the simulator")
            summary = asyncio.run(measure(args, url, psutil.Process(process.pid), Path(workdir)))
        finally:
            process.send_signal(signal.SIGTERM)
            process.wait(timeout=30)
    print(json.dumps(summary), flush=True)


if __name__ == "__main__":
    main()
