"""A `chmod 600 .env` the service cannot read is one line saying what to do, and the image reads it without it
being opened to anyone (issue 25, item 17). No image is built here: the entry point runs as the image runs it, as
root, and a root that obeys file modes stands in for the container's uid 10001 meeting the host user's file."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from common.environment import ROOT
from tests.helpers.file_access import AS_ROOT_OBEYING_MODES, NOBODY, private_file
from tests.helpers.harness import OUTSIDE_SETTINGS

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="owners and modes are set as root (CI runs as root)")

ENTRY_POINT = [str(ROOT / "deploy" / "supervisord-env.sh")]


@pytest.fixture
def host() -> Iterator[Path]:
    """A directory every user may enter (pytest's own are root's alone), as a checkout's is."""
    directory = Path(tempfile.mkdtemp(prefix="host", dir="/tmp"))
    directory.chmod(0o755)
    try:
        yield directory
    finally:
        shutil.rmtree(directory)


def environment(**settings: str) -> dict[str, str]:
    return {**{name: value for name, value in os.environ.items() if name not in OUTSIDE_SETTINGS
               and not name.startswith(("EMBEDDED_", "STREAMING_"))}, **settings}


@pytest.mark.parametrize("command", [ENTRY_POINT + ["true"], [sys.executable, "-m", "common.environment", "check"]])
def test_an_env_file_this_user_cannot_read_is_one_line_naming_it_the_uid_and_what_to_do(host, command):
    env_file = private_file(host / ".env", "SCHWAB_APP_SECRET=s3cret-value\n", owner=NOBODY)
    started = subprocess.run(AS_ROOT_OBEYING_MODES + command, cwd=ROOT, capture_output=True, text=True, timeout=60,
                             env=environment(ENV_FILE=str(env_file), STREAMING_VAR=str(host / "var")))
    assert started.returncode == 2 and started.stdout == "", started
    assert started.stderr.splitlines() == [
        f"settings: {env_file} cannot be read by uid 0 (it is uid {NOBODY}'s, mode 0600): run as uid {NOBODY}, or "
        f"give the file to uid 0 (chown 0 {env_file}) and keep it chmod 600, never readable by everyone. The "
        "image's entry point reads it as root: start the container without --user"]
    assert oct(env_file.stat().st_mode)[-3:] == "600"


def test_the_entry_point_reads_a_private_env_file_as_root_then_runs_everything_as_the_service_user(host):
    env_file = private_file(host / ".env", "STREAM_TICKERS=QQQ\nexport SCHWAB_CALLBACK_URL='https://127.0.0.1:8182'\n")
    volume = host / "var"
    volume.mkdir()
    os.chown(volume, NOBODY, -1)  # the image's volume is its user's
    shown = subprocess.run(
        ENTRY_POINT + ["sh", "-c", 'id -u; id -g; id -G; echo "$STREAM_TICKERS $HOME $USER"; cat "$ENV_FILE"'],
        cwd=ROOT, capture_output=True, text=True, timeout=60,
        env=environment(ENV_FILE=str(env_file), STREAMING_VAR=str(volume), STREAMING_USER="nobody"))
    assert shown.stdout.splitlines()[:4] == [str(NOBODY), str(NOBODY), str(NOBODY), "QQQ /nonexistent nobody"], shown
    assert "Permission denied" in shown.stderr, "the command itself cannot read the file: only the launcher did"
    assert oct(env_file.stat().st_mode)[-3:] == "600" and env_file.stat().st_uid == 0
