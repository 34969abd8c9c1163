"""Run the Schwab simulator (SIMULATED data); each flag defaults to its SIM_* variable."""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import sys
from pathlib import Path

from common import log

# Logging first: schwab-py imports authlib, which warns at import time, and
# the simulator's log holds JSON lines only.
log.setup("simulator")
logging.captureWarnings(True)

from common.simulator import faults  # noqa: E402
from common.simulator.server import Settings, run  # noqa: E402


def parse(argv: list[str] | None = None) -> Settings:
    env = os.environ
    parser = argparse.ArgumentParser(prog="python -m common.simulator", description=__doc__.splitlines()[0])
    parser.add_argument("--host", default=env.get("SIM_HOST", "127.0.0.1"))
    parser.add_argument("--port", type=int, default=int(env.get("SIM_PORT", "8765")), help="HTTP port")
    parser.add_argument("--ws-port", type=int, default=int(env.get("SIM_WS_PORT", "8766")), help="streamer port")
    parser.add_argument("--seed", type=int, default=int(env.get("SIM_SEED", "42")))
    parser.add_argument("--rate", type=float, default=float(env.get("SIM_RATE", "200")),
                        help="equity updates per second, across all subscribed symbols")
    parser.add_argument("--report", type=Path, default=Path(env["SIM_REPORT"]) if env.get("SIM_REPORT") else None,
                        help="write the report of what was sent here on exit")
    parser.add_argument("--trade-log", type=Path,
                        default=Path(env["SIM_TRADE_LOG"]) if env.get("SIM_TRADE_LOG") else None,
                        help="write every trade sent here, one JSON line each (see trade_log.py); unset: counts only")
    parser.add_argument("--heartbeat", type=float, default=float(env.get("SIM_HEARTBEAT", "5")),
                        help="seconds of silence before a heartbeat")
    parser.add_argument("--bar-seconds", type=float, default=float(env.get("SIM_BAR_SECONDS", "60")),
                        help="length of a CHART_EQUITY bar (tests shorten it so SMA9 has bars within seconds)")
    parser.add_argument("--fault", action="append", default=[], metavar="MODE[:ARG]",
                        help="inject a fault (repeatable; modes: " + ", ".join(faults.MODES) + ")")
    parser.add_argument("--fault-after", type=float, default=5.0, metavar="SECONDS",
                        help="seconds after the first login, and between faults, before each --fault")
    args = parser.parse_args(argv)
    try:
        chosen = tuple(faults.parse(spec) for spec in args.fault)
    except faults.FaultError as error:
        parser.error(str(error))
    if args.rate <= 0 or args.heartbeat <= 0 or args.bar_seconds <= 0:
        parser.error("--rate, --heartbeat and --bar-seconds must be above zero")
    return Settings(args.host, args.port, args.ws_port, args.seed, args.rate, args.report, args.heartbeat,
                    args.bar_seconds, chosen, args.fault_after, args.trade_log)


def main(argv: list[str] | None = None) -> None:
    settings = parse(argv)
    try:
        asyncio.run(run(settings))
    except OSError as error:  # a port in use, most often
        logging.getLogger("simulator").error("simulator cannot serve", extra={"error": str(error)})
        sys.exit(1)


if __name__ == "__main__":
    main()
