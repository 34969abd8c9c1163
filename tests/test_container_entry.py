"""The Dockerfile's entry point, run as the image runs it (the image itself cannot be built here).

`deploy/supervisord-env.sh deploy/container.sh` on a fresh volume: it must
initialise the embedded Postgres, run supervisord in the foreground, apply
the migrations, stream, and stop everything in order on SIGTERM (docker stop).
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import tempfile
from pathlib import Path

import psycopg

from tests.harness import ROOT, free_port, wait_for


def test_the_container_entry_point_starts_migrates_streams_and_stops_cleanly():
    volume = Path(tempfile.mkdtemp(prefix="ctr", dir="/tmp"))
    volume.chmod(0o755)  # the postgres OS user must reach var/pg when we are root
    sim_port = free_port()
    env = {key: value for key, value in os.environ.items()
           if not key.startswith(("SCHWAB_", "DATABASE_URL", "EMBEDDED_", "STREAMING_"))}
    env.update(STREAMING_VAR=str(volume), STREAM_TICKERS="SPY", SIM_PORT=str(sim_port), SIM_WS_PORT=str(free_port()),
               SIMULATOR_URL=f"http://127.0.0.1:{sim_port}", SIM_RATE="50", METRICS_HTTP_PORT=str(free_port()))
    log = (volume / "container.out").open("w")
    container = subprocess.Popen([str(ROOT / "deploy" / "supervisord-env.sh"), str(ROOT / "deploy" / "container.sh")],
                                 env=env, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT)
    url = f"postgresql://postgres@/streaming?host={volume}/pg/run"

    def stored() -> int:
        try:
            with psycopg.connect(url, connect_timeout=2) as conn:
                return conn.execute("SELECT count(*) FROM equity_data").fetchone()[0]
        except psycopg.Error:
            return 0

    try:
        wait_for(lambda: stored() > 5 or container.poll() is not None, 90, "trades stored")
        assert container.poll() is None, (volume / "container.out").read_text()
        container.send_signal(signal.SIGTERM)
        assert container.wait(timeout=120) == 0
        assert not (volume / "run" / "supervisord.pid").exists()
        logs = {path.name for path in (volume / "log").iterdir()}
        assert {"ingest.log", "writer.log", "metrics.log", "indicator.log", "options.log"} <= logs
    finally:
        if container.poll() is None:
            container.kill()
            container.wait()
        log.close()
        subprocess.run([sys.executable, "-m", "common.localpg", "stop", "--dir", str(volume / "pg")],
                       cwd=ROOT, capture_output=True)
        shutil.rmtree(volume, ignore_errors=True)
