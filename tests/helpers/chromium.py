"""Headless Chromium for tests: installed from the OS packages if missing, driven over the DevTools protocol.

The protocol (a websocket, with `websockets`) lets a test wait for what a
person would wait for, e.g. a chart that has drawn, instead of guessing a
time budget.
"""

from __future__ import annotations

import contextlib
import itertools
import json
import os
import shutil
import signal
import subprocess
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any

from websockets.sync.client import connect

BINARY = "chromium"
INSTALL_TIMEOUT = 600


def ensure_installed() -> str:
    """The Chromium binary, installing Debian's `chromium` package first if there is none."""
    found = shutil.which(BINARY)
    if found:
        return found
    if not shutil.which("apt-get"):
        raise RuntimeError("Chromium is missing and there is no apt-get to install it: install chromium and re-run")
    sudo = [] if os.geteuid() == 0 else ["sudo", "-n"]
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    install = [*sudo, "apt-get", "install", "-y", "-q", "chromium"]
    result = subprocess.run(install, env=env, capture_output=True, text=True, timeout=INSTALL_TIMEOUT)
    if result.returncode != 0:  # package lists missing or stale: refresh them once
        subprocess.run([*sudo, "apt-get", "update", "-q"], env=env, capture_output=True, timeout=INSTALL_TIMEOUT)
        result = subprocess.run(install, env=env, capture_output=True, text=True, timeout=INSTALL_TIMEOUT)
    found = shutil.which(BINARY)
    if result.returncode != 0 or not found:
        raise RuntimeError(f"could not install Chromium with `{' '.join(install)}` (exit {result.returncode}):\n"
                           f"{(result.stdout + result.stderr)[-2000:]}")
    return found


class Browser:
    """One headless Chromium with one page, for `with`."""

    def __init__(self, binary: str):
        self.profile = Path(tempfile.mkdtemp(prefix="chromium"))
        self.process = subprocess.Popen(
            [binary, "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--no-first-run",
             "--no-default-browser-check", "--remote-debugging-port=0", f"--user-data-dir={self.profile}",
             "about:blank"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True,
        )
        self._ids = itertools.count(1)
        self._closing = contextlib.ExitStack()
        try:
            port = self._devtools_port()
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/json/list", timeout=10) as response:
                page = next(target for target in json.loads(response.read()) if target["type"] == "page")
            self.socket = self._closing.enter_context(
                connect(page["webSocketDebuggerUrl"], max_size=None, open_timeout=10))
        except BaseException:
            self.close()
            raise

    def _devtools_port(self, timeout: float = 30.0) -> int:
        """Chromium writes the port it chose to DevToolsActivePort in its profile."""
        marker = self.profile / "DevToolsActivePort"
        deadline = time.monotonic() + timeout
        while not (marker.exists() and marker.read_text().strip()):
            if self.process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"Chromium did not start its DevTools endpoint (exit {self.process.poll()})")
            time.sleep(0.05)
        return int(marker.read_text().split()[0])

    def call(self, method: str, **params: Any) -> dict:
        """One DevTools command and its result (events in between are skipped)."""
        sent = next(self._ids)
        self.socket.send(json.dumps({"id": sent, "method": method, "params": params}))
        while True:
            message = json.loads(self.socket.recv(timeout=30))
            if message.get("id") == sent:
                if "error" in message:
                    raise RuntimeError(f"{method}: {message['error']}")
                return message["result"]

    def open(self, url: str, timeout: float = 30.0) -> None:
        """Navigate to `url` and wait until it has loaded."""
        self.call("Page.navigate", url=url)
        deadline = time.monotonic() + timeout
        while self.evaluate("document.readyState + ' ' + location.href") != f"complete {url}":
            if time.monotonic() > deadline:
                raise RuntimeError(f"{url} did not load within {timeout} s")
            time.sleep(0.05)

    def evaluate(self, expression: str) -> Any:
        """The value of a JavaScript expression in the page."""
        result = self.call("Runtime.evaluate", expression=expression, returnByValue=True)
        if "exceptionDetails" in result:
            raise RuntimeError(f"page script failed: {result['exceptionDetails']}")
        return result["result"].get("value")

    def __enter__(self) -> Browser:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Stop Chromium and every process it started (its own process group)."""
        self._closing.close()
        for sig in (signal.SIGTERM, signal.SIGKILL):
            try:
                os.killpg(self.process.pid, sig)
                self.process.wait(timeout=10)
                break
            except ProcessLookupError:
                break
            except subprocess.TimeoutExpired:
                continue
        shutil.rmtree(self.profile, ignore_errors=True)
