"""The Dockerfile's entry point and HEALTHCHECK, run as the image runs them (no image can be built here).

ENTRYPOINT + CMD on a fresh volume must initialise the embedded Postgres, run
supervisord in the foreground, apply the migrations, stream, pass the
HEALTHCHECK, and stop everything in order on SIGTERM (docker stop); with a
real database and no Schwab credentials it must refuse to start at all.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import tempfile
from pathlib import Path

import psycopg
import yaml

from common.store.localpg import LocalPostgres
from tests.helpers.harness import OUTSIDE_SETTINGS, ROOT, free_port, wait_for


def test_the_container_entry_point_starts_migrates_streams_and_stops_cleanly():
    volume = Path(tempfile.mkdtemp(prefix="ctr", dir="/tmp"))
    sim_port = free_port()
    env = entry_environment(volume)
    env.update(STREAMING_VAR=str(volume), STREAM_TICKERS="SPY", SIM_PORT=str(sim_port), SIM_WS_PORT=str(free_port()),
               SIMULATOR_URL=f"http://127.0.0.1:{sim_port}", SIM_RATE="50", METRICS_HTTP_PORT=str(free_port()))
    log = (volume / "container.out").open("w")
    container = subprocess.Popen(image("ENTRYPOINT") + image("CMD"), env=env, cwd=ROOT, stdout=log,
                                 stderr=subprocess.STDOUT)
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
        wait_for(lambda: healthcheck(env) == 0, 60, "the image's HEALTHCHECK to pass")
        container.send_signal(signal.SIGTERM)
        assert container.wait(timeout=120) == 0
        assert healthcheck(env) != 0, "a stopped service must fail its HEALTHCHECK"
        assert not (volume / "run" / "supervisord.pid").exists()
        logs = {path.name for path in (volume / "log").iterdir()}
        assert {"ingest.log", "writer.log", "metrics.log", "indicator.log", "options.log"} <= logs
    finally:
        if container.poll() is None:
            container.kill()
            container.wait()
        log.close()
        LocalPostgres(volume / "pg").remove()
        shutil.rmtree(volume, ignore_errors=True)


def image(instruction: str) -> list[str]:
    """An exec-form instruction of the Dockerfile (ENTRYPOINT, CMD, HEALTHCHECK's CMD), with /app/ as this checkout."""
    text = (ROOT / "Dockerfile").read_text().replace("\\\n", " ")
    line = next(line for line in text.splitlines() if line.startswith(instruction + " "))
    exec_form = line[line.index("CMD [") + 4:] if instruction == "HEALTHCHECK" else line.split(None, 1)[1]
    return [part.replace("/app/", f"{ROOT}/") for part in json.loads(exec_form)]


def healthcheck(env: dict[str, str]) -> int:
    return subprocess.run(image("HEALTHCHECK"), env=env, cwd=ROOT, capture_output=True, timeout=30).returncode


def test_compose_publishes_on_loopback_and_mounts_env_for_the_entry_point_to_read():
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    services = compose["services"]
    assert set(services) == {"embedded", "live"} and services["live"]["profiles"] == ["live"]
    for service in services.values():
        assert all(port.startswith("127.0.0.1:") for port in service["ports"]), service
        assert "env_file" not in service, "docker reads a .env file another way than the entry point"
    assert "./.env:/app/.env:ro" in services["live"]["volumes"]


def entry_environment(volume: Path) -> dict[str, str]:
    """The image's environment: none of ours, and its .env (mounted at /app/.env) empty."""
    env = {key: value for key, value in os.environ.items() if key not in OUTSIDE_SETTINGS
           and not key.startswith(("EMBEDDED_", "STREAMING_"))}
    (volume / ".env").write_text("")
    return {**env, "ENV_FILE": str(volume / ".env")}


def test_the_entry_point_refuses_a_real_database_without_schwab_credentials(tmp_path):
    env = {**entry_environment(tmp_path), "STREAMING_VAR": str(tmp_path), "SCHWAB_APP_SECRET": "s3cret-value",
           "DATABASE_URL": "postgresql://postgres.ref:pw@aws-0-us-east-1.pooler.supabase.com:5432/postgres"}
    entry = subprocess.run(image("ENTRYPOINT") + image("CMD"), env=env, cwd=ROOT, capture_output=True, text=True,
                           timeout=60)
    assert entry.returncode == 2, entry
    assert "SCHWAB_APP_SECRET is set but SCHWAB_APP_KEY is not" in entry.stderr
    assert not (tmp_path / "run").exists() and "s3cret" not in entry.stdout + entry.stderr
