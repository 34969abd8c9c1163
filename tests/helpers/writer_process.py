"""The writer actor run alone as a process, and what tests feed it."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from common.transport.bus import Publisher
from common.transport.messages import EquityTrade
from tests.helpers.harness import ROOT

#: A trade time (ms) the writer tests start from.
T0 = 1_764_000_000_000


@contextmanager
def writer_process(env: dict[str, str], var: Path) -> Iterator[subprocess.Popen]:
    """`python -m actors.writer` logging to var/writer.log; killed if a test leaves it running."""
    with (var / "writer.log").open("wb") as log:
        writer = subprocess.Popen([sys.executable, "-m", "actors.writer"], env=env, cwd=ROOT, stdout=log, stderr=log)
        try:
            yield writer
        finally:
            if writer.poll() is None:
                writer.kill()
                writer.wait()


def await_writer(*publishers: Publisher) -> None:
    """Until the writer has subscribed to each publisher: PUB/SUB drops whatever is sent before."""
    for publisher in publishers:
        assert publisher.wait_for_subscribers(["writer"], 30) == [], f"the writer never subscribed to {publisher.name}"


def trade(i: int, time_ms: int) -> EquityTrade:
    return EquityTrade("SPY", time_ms, 500 + i / 10_000, 100, 1000 + 100 * i, 100, 499.99, 500.01, 1)
