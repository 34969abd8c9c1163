"""The whole pipeline under a real supervisord, isolated in its own var dir.

Used by the end-to-end tests and by `make bench`: the same supervisord.conf
a user runs, a throwaway embedded Postgres and the Schwab simulator on free
ports, so a run here is a run of what ships.
"""

from __future__ import annotations

import atexit
import functools
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

import psycopg

from common.config import embedded_database_url
from common.simulator import trade_log
from common.store.localpg import LocalPostgres

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
ACTOR_PROGRAMS = ("writer", "metrics", "indicator", "options", "ingest")
#: A developer's own settings that must not reach a test's pipeline.
OUTSIDE_SETTINGS = ("DATABASE_URL", "MIGRATE_DATABASE_URL", "STREAM_SOURCE", "SCHWAB_APP_KEY", "SCHWAB_APP_SECRET",
                    "SUPABASE_URL", "SUPABASE_SERVICE_ROLE_KEY", "ENV_FILE")


@functools.cache
def cluster_template() -> LocalPostgres:
    """One initialised cluster per test run, copied for every pipeline: initdb once, not per pipeline.

    `make run`, the container and the deploy tests still initialise theirs as users do.
    """
    template = LocalPostgres(Path(tempfile.mkdtemp(prefix="pgtemplate", dir="/tmp")) / "pg")
    template.init()
    atexit.register(lambda: (template.remove(), shutil.rmtree(template.base_dir.parent, ignore_errors=True)))
    return template


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def wait_for(condition: Callable[[], Any], timeout: float, what: str, interval: float = 0.1) -> Any:
    """Poll until `condition()` is truthy; fail naming `what` after `timeout`."""
    deadline = time.monotonic() + timeout
    while True:
        result = condition()
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(interval)


class Pipeline:
    """One deployment under its own supervisord.

    By default it runs on its own embedded database, as `make run` gives a
    new user; with `database_url` it writes into that database instead (a
    second deployment beside another, on simulated data by choice).
    """

    def __init__(self, tickers: str = "SPY,QQQ", rate: int = 50, seed: int = 7, database_url: str | None = None,
                 **settings: str):
        self.var = Path(tempfile.mkdtemp(prefix="ss", dir="/tmp"))
        sim_port, ws_port = free_port(), free_port()
        self.embedded = database_url is None
        self.database_url = embedded_database_url(self.var) if self.embedded else database_url
        shared = {} if self.embedded else {"DATABASE_URL": database_url, "STREAM_SOURCE": "simulator"}
        self.env = {
            **{name: value for name, value in os.environ.items() if name not in OUTSIDE_SETTINGS},
            **shared,
            "STREAMING_VAR": str(self.var),
            "STREAMING_PYTHON": sys.executable,
            "EMBEDDED_PG": str(self.embedded).lower(),
            "EMBEDDED_SIM": "true",
            "STREAM_TICKERS": tickers,
            "DEPLOYMENT": "test",
            "SIM_PORT": str(sim_port),
            "SIM_WS_PORT": str(ws_port),
            "SIM_RATE": str(rate),
            "SIM_SEED": str(seed),
            "SIM_TRADE_LOG": str(self.var / "run" / "simulator-trades.jsonl"),
            "SIMULATOR_URL": f"http://127.0.0.1:{sim_port}",
            "STATS_INTERVAL": "0.5s",
            "METRICS_INTERVAL": "1s",
            "HEARTBEAT_INTERVAL": "0.5s",
            # Option snapshots every second: a test of a minute sees dozens of intervals closed.
            "OPTION_STORE_INTERVAL": "1s",
            **settings,
        }

    @property
    def report_path(self) -> Path:
        return self.var / "run" / "simulator-report.json"

    def ctl(self, *args: str, check: bool = True) -> str:
        result = subprocess.run(
            [str(BIN / "supervisorctl"), "-c", str(ROOT / "supervisord.conf"), *args],
            env=self.env, capture_output=True, text=True, timeout=120,
        )
        if check and result.returncode not in (0, 3):  # 3: some process not running (status)
            raise AssertionError(f"supervisorctl {' '.join(args)} failed: {result.stdout}{result.stderr}")
        return result.stdout

    def start(self) -> Pipeline:
        for sub in ("log", "data"):
            (self.var / sub).mkdir()
        (self.var / "run").mkdir(mode=0o700)
        if self.embedded:
            LocalPostgres(self.var / "pg").init(template=cluster_template())
        subprocess.run([str(BIN / "supervisord"), "-c", str(ROOT / "supervisord.conf")],
                       env=self.env, check=True, cwd=ROOT)
        migrated = subprocess.run([sys.executable, "-m", "common.store.migrate", "--wait", "60"],
                                  env=self.env, cwd=ROOT, capture_output=True, text=True)
        if migrated.returncode != 0:  # nothing is left running behind a failed start
            self.shutdown()
            raise AssertionError(f"migrations failed: {migrated.stderr}")
        return self

    def states(self) -> dict[str, str]:
        lines = self.ctl("status", check=False).splitlines()
        return {line.split()[0].split(":")[-1]: line.split()[1] for line in lines if line.strip()}

    def pid(self, program: str) -> int:
        group = "embedded" if program in ("postgres", "simulator") else "pipeline"
        return int(self.ctl("pid", f"{group}:{program}").strip())

    def query(self, sql: str, params: tuple = ()) -> list[tuple]:
        with psycopg.connect(self.database_url, connect_timeout=5) as connection:
            return connection.execute(sql, params).fetchall()

    def count(self, table: str) -> int:
        try:
            return self.query(f"SELECT count(*) FROM {table}")[0][0]
        except psycopg.OperationalError:
            return 0

    def stop_postgres(self) -> None:
        """Take the database away from a running writer.

        `supervisorctl stop` is Postgres' smart shutdown, which waits for
        sessions to end: once it refuses new connections (so the writer
        cannot reconnect in between), end the sessions left, the writer's
        too, from one opened before.
        """
        admin = psycopg.connect(self.database_url, autocommit=True)
        wait_for(lambda: admin.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE application_name = 'streaming-writer'").fetchone()[0] > 0,
            10, "the writer's session")
        stopping = threading.Thread(target=self.ctl, args=("stop", "embedded:postgres"))
        stopping.start()
        wait_for(self._refuses_connections, 30, "Postgres to begin its shutdown")
        admin.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
                      " WHERE pid <> pg_backend_pid() AND backend_type = 'client backend'")
        admin.close()
        stopping.join(timeout=60)

    def _refuses_connections(self) -> bool:
        try:
            psycopg.connect(self.database_url, connect_timeout=2).close()
        except psycopg.OperationalError:
            return True
        return False

    def trades_sent(self) -> int:
        """Trades the running simulator has sent so far."""
        return self.report_live()["counts"]["trades"]

    def sent_trades(self) -> dict[str, list[dict[str, Any]]]:
        """Every trade the simulator sent, by symbol in send order, from its trade log.

        All of them once the simulator has stopped; while it runs, those its
        last report counted (the report flushes the log before it answers).
        """
        return trade_log.read(Path(self.env["SIM_TRADE_LOG"]))

    def stop_all(self) -> None:
        """`supervisorctl stop all`, as a user would type it."""
        self.ctl("stop", "all")

    def stop_and_reopen(self) -> None:
        """`stop all`, then Postgres alone again so the tables can be read."""
        self.stop_all()
        self.ctl("start", "embedded:postgres")
        wait_for(lambda: self.count("equity_data"), 30, "Postgres to come back")

    def stored_trades(self) -> list[tuple]:
        """(ticker, trade time ms, day volume, price) of every stored trade, as the report writes them."""
        rows = self.query("SELECT ticker, (extract(epoch FROM timestamp) * 1000)::bigint, day_volume, price"
                          " FROM equity_data ORDER BY 1, 2, 3")
        return [tuple(row) for row in rows]

    def report(self) -> dict[str, Any]:
        """What the simulator sent, as it wrote it on exit."""
        return json.loads(self.report_path.read_text())

    def report_live(self) -> dict[str, Any]:
        """What the simulator has sent so far, asked of the running simulator."""
        with urllib.request.urlopen(f"{self.env['SIMULATOR_URL']}/sim/report", timeout=10) as response:
            return json.loads(response.read())

    def log(self, program: str) -> str:
        path = self.var / "log" / f"{program}.log"
        return path.read_text() if path.exists() else ""

    def replay_finished(self) -> dict[str, Any] | None:
        """ingest's "replay finished" log line (lines, records, seconds, records_per_second), once a replay
        (STREAM_SOURCE=replay, STREAM_REPLAY) has read its whole recording; None before. The writer may still
        be storing its tail: wait for the rows too."""
        for line in self.log("ingest").splitlines():
            if '"msg":"replay finished"' in line:
                return json.loads(line)
        return None

    def shutdown(self) -> None:
        self.ctl("shutdown", check=False)
        pidfile = self.var / "run" / "supervisord.pid"
        wait_for(lambda: not pidfile.exists(), 90, "supervisord to exit")
        if self.embedded:
            LocalPostgres(self.var / "pg").remove()
        shutil.rmtree(self.var, ignore_errors=True)
