"""The service changes the mode of no directory it did not create (issue 25, item 11): RUN_DIR=/run or
SCHWAB_TOKEN_PATH=/etc/schwab.json as root must not close the host's /run or /etc to its other users. What it
creates is private (0700); an existing directory open to others is named in a warning."""

from __future__ import annotations

import logging
import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from common.config import load
from common.environment import ROOT
from common.feed import login
from tests.helpers.file_access import shared_directory
from tests.helpers.harness import OUTSIDE_SETTINGS


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_an_actor_leaves_an_existing_run_dir_as_it_is_and_says_it_is_open(tmp_path, caplog):
    host_run = shared_directory(tmp_path / "run")  # what /run is on a host: 0755, not the service's
    config = load({"STREAMING_VAR": str(tmp_path / "var"), "RUN_DIR": str(host_run)})
    with caplog.at_level(logging.WARNING, logger="config"):
        config.ensure_dirs()
    assert mode(host_run) == 0o755
    assert [record.getMessage() for record in caplog.records] == [
        f"{host_run} is open to other users (mode 0755) and is left as it is: the service changes only directories "
        f"it creates. Make it private (chmod 700 {host_run}) or choose a directory of its own"]


def test_a_run_dir_the_actor_creates_is_private_and_a_private_one_is_not_mentioned(tmp_path, caplog):
    config = load({"STREAMING_VAR": str(tmp_path / "var"), "RUN_DIR": str(tmp_path / "made" / "here" / "run")})
    with caplog.at_level(logging.WARNING, logger="config"):
        config.ensure_dirs()
        config.ensure_dirs()
    assert mode(config.run_dir) == 0o700 and not caplog.records


def test_make_login_leaves_the_token_files_existing_directory_as_it_is(tmp_path, caplog):
    etc = shared_directory(tmp_path / "etc")
    with caplog.at_level(logging.WARNING, logger="config"):
        login.private_dir(etc)
    assert mode(etc) == 0o755 and f"{etc} is open to other users (mode 0755)" in caplog.text
    login.private_dir(tmp_path / "secrets")
    assert mode(tmp_path / "secrets") == 0o700


def test_make_deploys_token_path_leaves_an_existing_directory_as_it_is(tmp_path):
    etc = shared_directory(tmp_path / "etc")
    env = {**os.environ, "STREAMING_PYTHON": sys.executable, "STREAMING_VAR": str(tmp_path / "var"),
           "SCHWAB_TOKEN_PATH": str(etc / "schwab.json")}
    printed = subprocess.run(["bash", "deploy/host.sh", "token-path"], cwd=ROOT, env=env, capture_output=True,
                             text=True, timeout=60)
    assert Path(printed.stdout.strip()).parent == etc, printed.stderr
    assert mode(etc) == 0o755


@pytest.mark.parametrize("setting, directory", [("RUN_DIR", "run"), ("SCHWAB_TOKEN_PATH", "etc/schwab.json")])
def test_make_run_warns_of_a_directory_open_to_others(tmp_path, setting, directory):
    shared_directory(tmp_path / Path(directory).parts[0])
    (tmp_path / ".env").write_text("")
    (tmp_path / ".env").chmod(0o600)
    env = {**{name: value for name, value in os.environ.items() if name not in OUTSIDE_SETTINGS},
           "ENV_FILE": str(tmp_path / ".env"), "STREAMING_VAR": str(tmp_path / "var"), setting: str(tmp_path / directory)}
    checked = subprocess.run([sys.executable, "-m", "common.environment", "check"], cwd=ROOT, env=env,
                             capture_output=True, text=True, timeout=60)
    assert checked.returncode == 0, checked.stderr
    assert f"warning   {tmp_path / Path(directory).parts[0]} is open to other users (mode 0755)" in checked.stdout
