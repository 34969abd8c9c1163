"""`python -m common.observe.health` and `streaming-health` against a running pipeline: OK, an actor stopped, OK again."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from common.config import ACTORS
from tests.helpers.harness import ACTOR_PROGRAMS, BIN, ROOT, Pipeline, wait_for

pytestmark = pytest.mark.e2e
TABLES = ("equity_data", "indicators", "option_prices", "streaming_metrics", "stream_metrics")
CHECKS = ("database", "freshness:equity_data", "freshness:indicators", "freshness:option_prices", "error_rate",
          "ingest_status", "realtime", "journal_lag", "storage_budget", "archive",
          *(f"actor:{actor}" for actor in ACTORS))


@pytest.fixture(scope="module")
def pipeline():
    running = Pipeline().start()
    try:
        wait_for(lambda: all(running.count(table) for table in TABLES), 60, "rows in every table")
        yield running
    finally:
        running.shutdown()


def health(pipeline: Pipeline, *args: str, command: tuple[str, ...] = (sys.executable, "-m", "common.observe.health")):
    return subprocess.run([*command, *args], env=pipeline.env, cwd=ROOT, capture_output=True, text=True, timeout=60)


def exits(pipeline: Pipeline, code: int):
    """Wait until the command exits `code`; the last run, for its output."""
    runs = []

    def ran() -> bool:
        runs.append(health(pipeline))
        return runs[-1].returncode == code

    try:
        wait_for(ran, 60, f"health to exit {code}", interval=1.0)
    except AssertionError as error:
        logs = "\n".join(f"--- {p}.log\n{pipeline.log(p)[-2000:]}" for p in ACTOR_PROGRAMS)
        raise AssertionError(f"{error}\n{runs[-1].stdout}{runs[-1].stderr}\n{logs}") from None
    return runs[-1]


def test_a_running_pipeline_is_ok_in_a_table_and_in_json(pipeline):
    table = exits(pipeline, 0)
    assert table.stderr == ""
    lines = table.stdout.splitlines()
    assert lines[0].split() == ["CHECK", "LEVEL", "DETAIL"] and lines[-1] == "status: OK"
    assert [line.split()[:2] for line in lines[1:-2]] == [[name, "OK"] for name in CHECKS]

    document = json.loads(health(pipeline, "--json").stdout)
    assert document["status"] == "OK" and [c["name"] for c in document["checks"]] == list(CHECKS)
    assert {c["name"]: c["value"] for c in document["checks"]}["actor:writer"] == "RUNNING"


def test_the_installed_command_speaks_json(pipeline):
    run = health(pipeline, "--json", command=(str(BIN / "streaming-health"),))
    assert run.returncode == 0, run.stdout + run.stderr
    assert json.loads(run.stdout)["status"] == "OK"


def test_a_stopped_actor_is_critical_until_it_runs_again(pipeline):
    pipeline.ctl("stop", "pipeline:indicator")
    stopped = health(pipeline)
    assert stopped.returncode == 2, stopped.stdout
    critical = [line for line in stopped.stdout.splitlines() if " CRIT " in line]
    assert critical and critical[0].startswith("actor:indicator") and "STOPPED" in critical[0], stopped.stdout
    assert stopped.stdout.splitlines()[-1] == "status: CRIT"

    pipeline.ctl("start", "pipeline:indicator")
    exits(pipeline, 0)
