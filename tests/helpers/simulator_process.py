"""A simulator process on free ports and its own run directory, for tests that drive it with their own flags."""

from __future__ import annotations

import shutil
import signal
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
from websockets.exceptions import ConnectionClosed

from common.simulator import control
from tests.helpers.harness import free_port, wait_for

ROOT = Path(__file__).resolve().parents[2]
#: Each running simulator's run directory, by its URL: where its control token is.
_RUN_DIRS: dict[str, Path] = {}


def answers(url: str) -> bool:
    try:
        return httpx.get(f"{url}/sim/report", timeout=0.5).status_code == 200
    except httpx.TransportError:
        return False


@contextmanager
def simulator(*flags: str, log: Path | None = None) -> Iterator[str]:
    """Run `python -m common.simulator` with `flags`; yield its HTTP URL; stop it with SIGTERM (exit 0).

    Its run directory is its own (`run_dir`), so that simulators of tests running at once never share a
    control token."""
    port, ws_port = free_port(), free_port()
    private = Path(tempfile.mkdtemp(prefix="simrun", dir="/tmp"))
    out = log.open("w") if log else subprocess.DEVNULL
    process = subprocess.Popen(
        [sys.executable, "-m", "common.simulator", "--port", str(port), "--ws-port", str(ws_port),
         "--run-dir", str(private), *flags],
        cwd=ROOT, stdout=out, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    _RUN_DIRS[url] = private
    try:
        wait_for(lambda: answers(url) or process.poll() is not None, 15, "the simulator")
        assert process.poll() is None, log.read_text() if log else "the simulator exited"
        yield url
    finally:
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=5) == 0
        del _RUN_DIRS[url]
        shutil.rmtree(private, ignore_errors=True)
        if log:
            out.close()


def run_dir(url: str) -> Path:
    """The run directory of the simulator at `url`, started by `simulator`."""
    return _RUN_DIRS[url]


def control_headers(url: str) -> dict[str, str]:
    """What a control request (`/sim/inject`, `/sim/fault`) to the simulator at `url` sends: its run's token, as
    the repo's own tools read it from the run directory, and the JSON content type."""
    return control.headers(run_dir(url))


def issued_token(url: str) -> dict[str, Any]:
    """What `make login` gets from the simulator at `url`: an authorization code, exchanged for tokens it issued."""
    allowed = httpx.get(f"{url}/v1/oauth/authorize?response_type=code&client_id=app&redirect_uri=https://127.0.0.1",
                        follow_redirects=False)
    code = parse_qs(urlsplit(allowed.headers["Location"]).query)["code"][0]
    answer = httpx.post(f"{url}/v1/oauth/token", data={"grant_type": "authorization_code", "code": code})
    answer.raise_for_status()
    return answer.json()


async def log_out(stream: Any, client: Any) -> None:
    """Log a schwab-py stream out, take everything sent before the close, and close the client's session."""
    await stream.logout()
    try:
        while True:
            await stream.handle_message()
    except ConnectionClosed:
        pass
    await client.close_async_session()
