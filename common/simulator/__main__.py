"""Run the Schwab simulator (SIMULATED data); each flag defaults to its SIM_* variable."""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from common import log

# Logging first: schwab-py imports authlib, which warns at import time, and
# the simulator's log holds JSON lines only.
log.setup("simulator")
logging.captureWarnings(True)

from common.config import BY_NAME, ConfigError, Rejected, read  # noqa: E402
from common.simulator import faults  # noqa: E402
from common.simulator.server import Settings, run  # noqa: E402


def setting(name: str) -> dict[str, Any]:
    """argparse keywords for a flag that defaults to setting `name`, checked by that setting's reader either way."""
    definition = BY_NAME[name]

    def checked(raw: str) -> Any:
        try:
            return definition.read(raw)
        except Rejected as problem:
            raise argparse.ArgumentTypeError(f"{raw!r} {problem}") from None

    default = os.environ.get(name, "").strip() or definition.default or None
    return {"type": checked, "default": default, "help": f"{definition.meaning} (default: ${name})"}


def run_dir(env: Mapping[str, str]) -> Path:
    """The run directory the actors and `make` use (RUN_DIR, else STREAMING_VAR/run, as common/config.py says):
    the control token goes there, where the repo's tools look for it."""
    return read(env, "RUN_DIR") or (read(env, "STREAMING_VAR") or Path.cwd() / "var").resolve() / "run"


def parse(argv: list[str] | None = None) -> Settings:
    parser = argparse.ArgumentParser(prog="python -m common.simulator", description=__doc__.splitlines()[0])
    parser.add_argument("--host", **setting("SIM_HOST"))
    parser.add_argument("--port", **setting("SIM_PORT"))
    parser.add_argument("--ws-port", **setting("SIM_WS_PORT"))
    parser.add_argument("--seed", **setting("SIM_SEED"))
    parser.add_argument("--rate", **setting("SIM_RATE"))
    parser.add_argument("--report", **setting("SIM_REPORT"))
    parser.add_argument("--trade-log", **setting("SIM_TRADE_LOG"))
    parser.add_argument("--heartbeat", **setting("SIM_HEARTBEAT"))
    parser.add_argument("--bar-seconds", **setting("SIM_BAR_SECONDS"))
    parser.add_argument("--delayed", action="store_true",
                        help="serve as Schwab serves an account not entitled to real-time data: every level-one "
                             "item marked delayed")
    parser.add_argument("--run-dir", type=Path, metavar="DIR",
                        help="where this run's control token is written (default: $RUN_DIR, else $STREAMING_VAR/run)")
    parser.add_argument("--fault", action="append", default=[], metavar="MODE[:ARG]",
                        help="inject a fault (repeatable; modes: " + ", ".join(faults.MODES) + ")")
    parser.add_argument("--fault-after", type=float, default=5.0, metavar="SECONDS",
                        help="seconds after the first login, and between faults, before each --fault")
    args = parser.parse_args(argv)
    try:
        chosen = tuple(faults.parse(spec) for spec in args.fault)
        private = args.run_dir or run_dir(os.environ)
    except (faults.FaultError, ConfigError) as error:
        parser.error(str(error))
    return Settings(args.host, args.port, args.ws_port, args.seed, args.rate, args.report, args.heartbeat,
                    args.bar_seconds, private, chosen, args.fault_after, args.trade_log, args.delayed)


def main(argv: list[str] | None = None) -> None:
    settings = parse(argv)
    try:
        asyncio.run(run(settings))
    except OSError as error:  # a port in use, most often
        logging.getLogger("simulator").error("simulator cannot serve", extra={"error": str(error)})
        sys.exit(1)


if __name__ == "__main__":
    main()
