"""The Schwab simulator's memory over a sped-up long run: a measurement, not a test.

    nice -n 10 python -m tests.sim_soak [--minutes 10] [--rate 5000] [--tickers 200] [--options 400]
                                        [--interval 10] [--root CHECKOUT] [--trade-log PATH]

Starts `python -m common.simulator` from CHECKOUT (default: this one; another
checkout, such as a `git worktree` of an older commit, measures older code
the same way), streams --tickers equities, their one-minute charts and
--options option contracts to the real schwab-py client, and samples the
simulator's memory (psutil: RSS, PSS, USS) every --interval seconds while the
client counts the trades it receives. Prints one JSON object per sample, then
a summary: memory at the start and the end, trades, and growth per trade.
It keeps both CPUs of a small machine busy: run it alone, nice'd.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime
import json
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
import psutil

from common import config as config_module
from common.feed.schwab_client import make_client, make_stream_client
from common.simulator.market import KNOWN
from tests.helpers.harness import free_port, wait_for
from tests.helpers.simulator_process import ROOT, answers, log_out

MB = 2**20


class TradeCounter:
    """Counts trades as the simulator does: a later level-one item of a key that carries TOTAL_VOLUME."""

    def __init__(self) -> None:
        self.snapshotted: set[str] = set()
        self.trades = 0

    def on_equity(self, message: dict) -> None:
        for item in message["content"]:
            key = item["key"]
            if key in self.snapshotted:
                self.trades += "TOTAL_VOLUME" in item
            else:
                self.snapshotted.add(key)


def memory(process: psutil.Process) -> dict[str, float]:
    info = process.memory_full_info()
    cpu = process.cpu_times()
    return {"rss_mb": round(info.rss / MB, 1), "pss_mb": round(info.pss / MB, 1), "uss_mb": round(info.uss / MB, 1),
            "cpu_s": round(cpu.user + cpu.system, 1)}


def tickers(count: int) -> list[str]:
    return [*KNOWN, *(f"T{i:03d}" for i in range(max(count - len(KNOWN), 0)))][:count]


async def option_contracts(client, count: int) -> list[str]:
    """Up to `count` contracts near the money, a few underlyings' worth, as the options actor chooses them."""
    today = datetime.date.today()
    contracts: list[str] = []
    for underlying in KNOWN:
        if len(contracts) >= count:
            break
        chain = (await client.get_option_chain(underlying, strike_count=10, from_date=today,
                                               to_date=today + datetime.timedelta(days=10))).json()
        contracts += [c["symbol"] for side in ("callExpDateMap", "putExpDateMap")
                      for strikes in chain[side].values() for listed in strikes.values() for c in listed]
    return contracts[:count]


async def soak(args: argparse.Namespace, url: str, simulator: psutil.Process, workdir: Path) -> dict:
    config = config_module.load({"SIMULATOR_URL": url, "SCHWAB_TOKEN_PATH": str(workdir / "token.json")})
    client = make_client(config, asyncio=True)
    idle = memory(simulator)
    stream = make_stream_client(client)
    counter = TradeCounter()
    stream.add_level_one_equity_handler(counter.on_equity)
    stream.add_level_one_option_handler(lambda message: None)
    stream.add_chart_equity_handler(lambda message: None)
    contracts = await option_contracts(client, args.options)
    await stream.login()
    symbols = tickers(args.tickers)
    await stream.level_one_equity_subs(symbols)
    await stream.chart_equity_subs(symbols)
    await stream.level_one_option_subs(contracts)

    async def pump() -> None:
        while True:
            await stream.handle_message()

    pumping = asyncio.create_task(pump())
    samples = []
    started = time.monotonic()
    deadline = started + args.minutes * 60
    while True:
        sample = {"elapsed_s": round(time.monotonic() - started), **memory(simulator),
                  "trades_received": counter.trades}
        samples.append(sample)
        print(json.dumps(sample), flush=True)
        if time.monotonic() >= deadline or pumping.done():
            break
        await asyncio.sleep(min(args.interval, max(deadline - time.monotonic(), 0)))
    pumping.cancel()
    await asyncio.gather(pumping, return_exceptions=True)
    await log_out(stream, client)  # everything sent before the logout, then the close
    report = httpx.get(f"{url}/sim/report", timeout=300).json()  # the old simulator's holds every trade: after sampling
    first, last = samples[0], samples[-1]
    traded = last["trades_received"] - first["trades_received"]
    return {
        "code": str(args.root), "rate": args.rate, "tickers": len(symbols), "option_contracts": len(contracts),
        "trade_log": str(args.trade_log) if args.trade_log else None,
        "seconds": last["elapsed_s"], "idle_rss_mb": idle["rss_mb"],
        "rss_mb_start": first["rss_mb"], "rss_mb_end": last["rss_mb"], "rss_mb_max": max(s["rss_mb"] for s in samples),
        "pss_mb_start": first["pss_mb"], "pss_mb_end": last["pss_mb"],
        "trades_received": counter.trades, "trades_reported": report["counts"]["trades"],
        "trades_per_second": round(traded / max(last["elapsed_s"], 1), 1),
        "rss_growth_bytes_per_trade": round((last["rss_mb"] - first["rss_mb"]) * MB / max(traded, 1), 1),
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m tests.sim_soak", description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=10.0)
    parser.add_argument("--rate", type=float, default=5000.0, help="the simulator's equity updates per second")
    parser.add_argument("--tickers", type=int, default=200)
    parser.add_argument("--options", type=int, default=400, help="option contracts subscribed (at most 500)")
    parser.add_argument("--interval", type=float, default=10.0, help="seconds between memory samples")
    parser.add_argument("--root", type=Path, default=ROOT, help="the checkout whose simulator runs")
    parser.add_argument("--trade-log", type=Path, help="pass --trade-log PATH to the simulator (code that has it)")
    args = parser.parse_args(argv)
    port, ws_port = free_port(), free_port()
    command = [sys.executable, "-m", "common.simulator", "--port", str(port), "--ws-port", str(ws_port),
               "--rate", str(args.rate), "--seed", "42", *(["--trade-log", str(args.trade_log)] if args.trade_log else [])]
    with tempfile.TemporaryDirectory(prefix="sim-soak") as workdir:
        with open(Path(workdir) / "simulator.log", "w") as log:
            process = subprocess.Popen(command, cwd=args.root, stdout=log, stderr=subprocess.STDOUT)
        url = f"http://127.0.0.1:{port}"
        try:
            wait_for(lambda: answers(url) or process.poll() is not None, 15, "the simulator")
            summary = asyncio.run(soak(args, url, psutil.Process(process.pid), Path(workdir)))
        finally:
            process.send_signal(signal.SIGTERM)
            process.wait(timeout=30)
    print(json.dumps({"summary": summary}), flush=True)


if __name__ == "__main__":
    main()
