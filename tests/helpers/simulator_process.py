"""A simulator process on free ports, for tests that drive it with their own flags."""

from __future__ import annotations

import signal
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
from websockets.exceptions import ConnectionClosed

from tests.helpers.harness import free_port, wait_for

ROOT = Path(__file__).resolve().parents[2]


def answers(url: str) -> bool:
    try:
        return httpx.get(f"{url}/sim/report", timeout=0.5).status_code == 200
    except httpx.TransportError:
        return False


@contextmanager
def simulator(*flags: str, log: Path | None = None) -> Iterator[str]:
    """Run `python -m common.simulator` with `flags`; yield its HTTP URL; stop it with SIGTERM (exit 0)."""
    port, ws_port = free_port(), free_port()
    out = log.open("w") if log else subprocess.DEVNULL
    process = subprocess.Popen(
        [sys.executable, "-m", "common.simulator", "--port", str(port), "--ws-port", str(ws_port), *flags],
        cwd=ROOT, stdout=out, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        wait_for(lambda: answers(url) or process.poll() is not None, 15, "the simulator")
        assert process.poll() is None, log.read_text() if log else "the simulator exited"
        yield url
    finally:
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=5) == 0
        if log:
            out.close()


async def log_out(stream: Any, client: Any) -> None:
    """Log a schwab-py stream out, take everything sent before the close, and close the client's session."""
    await stream.logout()
    try:
        while True:
            await stream.handle_message()
    except ConnectionClosed:
        pass
    await client.close_async_session()
