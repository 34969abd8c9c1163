"""`python -m actors.indicator` as a real process between real bus sockets."""

import json
import math
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from common.config import load
from common.transport.bus import Publisher, Subscriber
from common.transport.messages import (
    Envelope,
    EquityTrade,
    Heartbeat,
    IndicatorValue,
    MetricSample,
)
from tests.helpers.indicator_reference import assert_same, market, reference, utc_ms

ROOT = Path(__file__).resolve().parents[2]
FRAME_RECORDS = 40


@pytest.fixture
def var():
    path = Path(tempfile.mkdtemp(prefix="ind", dir="/tmp"))
    yield path
    shutil.rmtree(path, ignore_errors=True)


def frames(events: list) -> list[list]:
    """Consecutive events of one type, any symbols, at most FRAME_RECORDS a frame, as ingest sends them."""
    out: list[list] = []
    for event in events:
        if out and type(out[-1][0]) is type(event) and len(out[-1]) < FRAME_RECORDS:
            out[-1].append(event)
        else:
            out.append([event])
    return out


def test_actor_publishes_reference_values_and_stops_cleanly(var):
    env = {
        **os.environ,
        "RUN_DIR": str(var / "run"),
        "LOG_DIR": str(var / "log"),
        "DATA_DIR": str(var / "data"),
        "BUS_TRANSPORT": "ipc",
        "HEARTBEAT_INTERVAL": "0.2s",
        "STATS_INTERVAL": "0.2s",
        "DEPLOYMENT": "test",
    }
    config = load(env)
    config.ensure_dirs()
    ingest = Publisher(config, "ingest")
    listener = Subscriber(config, "writer")  # the actor waits for its downstream consumer
    listener.subscribe("indicator", IndicatorValue)
    listener.subscribe("indicator", MetricSample)
    stdout, stderr = (var / "stdout").open("wb"), (var / "stderr").open("wb")
    actor = subprocess.Popen([sys.executable, "-m", "actors.indicator"], env=env, cwd=ROOT, stdout=stdout, stderr=stderr)
    received: list[Envelope | Heartbeat] = []

    def until(condition: Callable[[], Any], timeout: float, what: str) -> None:
        """Listen (keeping every frame) until `condition()`; fail if the actor crashes or time runs out."""
        deadline = time.monotonic() + timeout
        while not condition():
            assert actor.poll() in (None, 0), f"actor exited {actor.returncode}: {(var / 'stderr').read_text()}"
            assert time.monotonic() < deadline, f"timed out after {timeout}s waiting for {what}"
            frame = listener.recv(0.05)
            if frame is not None:
                received.append(frame)

    def metrics() -> list[MetricSample]:
        return [r for f in received if isinstance(f, Envelope) for r in f.records if isinstance(r, MetricSample)]

    try:
        until(lambda: not ingest.wait_for_subscribers(["indicator"], 0.05), 30, "the actor to subscribe to ingest")
        until(metrics, 10, "a metric sample, proving our subscription reached the actor")

        events = market(seed=23, windows=[(utc_ms(2024, 3, 11, 13, 20), utc_ms(2024, 3, 11, 13, 45))],
                        symbols=("SPY", "QQQ"), per_window=600)
        bad = EquityTrade("SPY", utc_ms(2024, 3, 11, 13, 45), float("nan"), 1, 1, 1, None, None, 0)
        plan = frames(events)
        plan.insert(len(plan) // 2, [bad])
        for records in plan:
            ingest.send(records)
        expected = reference(events)
        sent = sum(len(records) for records in plan)

        until(lambda: any(m.records_in == sent for m in metrics()), 15, "the actor to count every record")
        values = [r for f in received if isinstance(f, Envelope) and f.stream == "test/indicator/indicator"
                  for r in f.records]
        for symbol in ("SPY", "QQQ"):
            assert_same([v for v in values if v.symbol == symbol], [v for v in expected if v.symbol == symbol])
        assert any(v.sma9 is not None for v in values) and len(values) == len(expected)
        last = max(metrics(), key=lambda m: m.ts_ns)
        assert (last.status, last.records_in, last.records_out, last.errors, last.gaps) == (
            "running", sent, len(expected), 1, 0,
        )

        ingest.close()  # its final heartbeat is what the actor's drain waits for
        actor.send_signal(signal.SIGTERM)
        assert actor.wait(timeout=15) == 0
        until(lambda: any(isinstance(f, Heartbeat) and f.final for f in received), 5, "the actor's goodbye")
        assert metrics()[-1].status == "stopped"
    finally:
        if actor.poll() is None:
            actor.kill()
            actor.wait()
        listener.close()
        stdout.close()
        stderr.close()

    lines = [json.loads(line) for line in (var / "stdout").read_text().splitlines()]
    assert lines and all(line["actor"] == "indicator" for line in lines)
    rejected = [line for line in lines if line["msg"] == "record rejected"]
    assert len(rejected) == 1 and rejected[0]["record"]["symbol"] == "SPY"
    assert rejected[0]["record"]["price"] is None or math.isnan(rejected[0]["record"]["price"])
