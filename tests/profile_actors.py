"""Where each actor's CPU goes: py-spy over one pipeline at a bench shape. A measurement, not a test.

    nice python -m tests.profile_actors [--tickers 4] [--rate 1000] [--seconds 20] [--out DIR] [--top 25] [--hz 100]
                                        [--closed CLOCK]

Starts the pipeline as `make bench` does (the shipped intervals, the
simulator at --rate updates a second over --tickers tickers), waits for the
options actor's contracts, then records every actor at once with py-spy
(`--nonblocking`, --hz samples a second, idle time left out) for --seconds. Writes each
actor's collapsed stacks to DIR/<actor>.txt (for flamegraph.pl or
speedscope) and prints, per actor, the functions with the largest share of
its samples, inclusive and self. With `--closed CLOCK` (a MARKET_CLOCK on a
closed day, e.g. 2026-11-28T12:00:00-05:00) it profiles the idle pipeline
instead, once ingest has logged out.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

from tests.bench import (
    ACTOR_PROGRAMS,
    OPTIONS_TIMEOUT,
    SHIPPED,
    log_lines,
    options_streaming,
    program_processes,
    tickers_for,
)
from tests.helpers.harness import Pipeline, wait_for

PY_SPY = Path(sys.executable).with_name("py-spy")


def summary(collapsed: Path, top: int) -> list[str]:
    """The `top` functions by inclusive and by self share of the samples in a collapsed-stack file."""
    inclusive, own, total = Counter(), Counter(), 0
    for line in collapsed.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        frames, samples = stack.split(";"), int(count)
        total += samples
        own[frames[-1]] += samples
        for frame in set(frames):
            inclusive[frame] += samples
    lines = [f"  {total} samples"]
    lines += [f"  {100 * n / total:5.1f}% incl  {name[:110]}" for name, n in inclusive.most_common(top)]
    lines += [f"  {100 * n / total:5.1f}% self  {name[:110]}" for name, n in own.most_common(top // 2)]
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tickers", type=int, default=4)
    parser.add_argument("--rate", type=int, default=1000)
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--out", type=Path, default=None)
    parser.add_argument("--top", type=int, default=25)
    parser.add_argument("--hz", type=int, default=100, help="py-spy samples per second")
    parser.add_argument("--closed", default="", help="a MARKET_CLOCK on a closed day: profile the idle pipeline")
    args = parser.parse_args()
    if not PY_SPY.exists():
        raise SystemExit(f"{PY_SPY} is missing: .venv/bin/pip install py-spy")
    out = args.out or Path(tempfile.mkdtemp(prefix="profile-"))
    out.mkdir(parents=True, exist_ok=True)
    tickers = tickers_for(args.tickers)
    closed = {"MARKET_HOURS": "exchange", "MARKET_CLOCK": args.closed} if args.closed else {}
    pipeline = Pipeline(tickers=",".join(tickers), rate=args.rate, seed=7, **SHIPPED, **closed).start()
    try:
        if args.closed:
            wait_for(lambda: any(line.get("msg", "").startswith("market closed")
                                 for line in log_lines(pipeline.var / "log" / "ingest.log")), 60, "the market closed")
        else:
            wait_for(lambda: options_streaming(pipeline, tickers) is not None, OPTIONS_TIMEOUT,
                     "the options actor's contracts to stream", interval=0.5)
        time.sleep(5)  # warm-up: nothing to await
        running = program_processes(pipeline)
        recorders = {
            name: subprocess.Popen([str(PY_SPY), "record", "--nonblocking", "--rate", str(args.hz), "--format", "raw",
                                    "--duration", str(int(args.seconds)), "--pid", str(running[name].pid),
                                    "--output", str(out / f"{name}.txt")],
                                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            for name in ACTOR_PROGRAMS
        }
        for name, recorder in recorders.items():
            recorder.wait(timeout=args.seconds + 60)
    finally:
        pipeline.shutdown()
    for name in ACTOR_PROGRAMS:
        print(f"=== {name}")
        print("\n".join(summary(out / f"{name}.txt", args.top)))
    print(f"collapsed stacks in {out}", file=sys.stderr)


if __name__ == "__main__":
    main()
