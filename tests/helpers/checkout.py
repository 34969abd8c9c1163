"""A copy of this checkout that a test drives with real `make`, as a user does.

The copy has its own `.env`, `var/` and mode; its `.venv` is a symlink to this
checkout's, which `make test` has already set up for `make run` too (so the
copy's `make setup` installs nothing). Whatever the copy started is stopped,
and its embedded cluster removed, when the test is done with it.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from pathlib import Path

from common.store.localpg import LocalPostgres
from tests.helpers.harness import OUTSIDE_SETTINGS, ROOT

#: What make passes to a nested make, and settings of the developer's own: none may reach the copy.
NOT_INHERITED = ("MAKEFLAGS", "MFLAGS", "MAKELEVEL", "STREAMING_VAR", "STREAMING_PYTHON", "EMBEDDED_PG",
                 "EMBEDDED_SIM", *OUTSIDE_SETTINGS)


class Checkout:
    def __init__(self, mode: int = 0o755):
        self.parent = Path(tempfile.mkdtemp(prefix="co", dir="/tmp"))
        self.root = self.parent / "checkout"
        shutil.copytree(ROOT, self.root, symlinks=True, ignore=shutil.ignore_patterns(
            ".git", ".venv", "var", ".env*", "__pycache__", "*_cache", "*.egg-info"))
        (self.root / ".venv").symlink_to(ROOT / ".venv", target_is_directory=True)
        self.root.chmod(mode)
        self.var = self.root / "var"

    def write_env(self, text: str, mode: int = 0o600) -> Path:
        path = self.root / ".env"
        path.write_text(text)
        path.chmod(mode)
        return path

    def make(self, *args: str, timeout: float = 300, **env: str) -> subprocess.CompletedProcess[str]:
        """`make ARGS` in the copy; stdout and stderr together, as a terminal shows them."""
        environ = {name: value for name, value in os.environ.items() if name not in NOT_INHERITED}
        return subprocess.run(["make", "--no-print-directory", *args], cwd=self.root, env={**environ, **env},
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, timeout=timeout)

    def log(self, program: str) -> str:
        path = self.var / "log" / f"{program}.log"
        return path.read_text() if path.exists() else ""

    def close(self) -> None:
        if (self.var / "run" / "supervisord.pid").exists():
            self.make("stop", timeout=150)
        LocalPostgres(self.var / "pg").remove()
        shutil.rmtree(self.parent, ignore_errors=True)
