"""deploy/host.sh picks the Python a host has: 3.11-3.13 with its venv module, the system's own python3 included.

Real interpreters of this machine image (pyenv's) stand in for a host's: Ubuntu
24.04 has only python3 = 3.12, Debian 13 only 3.13, Ubuntu 22.04's python3 is
3.10, which is too old.
"""

from __future__ import annotations

import glob
import subprocess
from pathlib import Path

import pytest

from tests.helpers.harness import ROOT


def interpreter(version: str) -> Path:
    found = sorted(glob.glob(f"/root/.pyenv/versions/{version}.*/bin/python{version}"))
    if not found:
        pytest.fail(f"this test needs a CPython {version} (the machine image's pyenv carries one)")
    return Path(found[-1])


def chosen(tmp_path: Path, asked: str = "", **pythons: str) -> subprocess.CompletedProcess[str]:
    """`host.sh python` on a PATH holding only `pythons` (name: version), with PYTHON=`asked`."""
    for name, version in pythons.items():
        (tmp_path / name).symlink_to(interpreter(version))
    return subprocess.run(["/bin/bash", str(ROOT / "deploy" / "host.sh"), "python"],
                          env={"PATH": str(tmp_path), "PYTHON": asked}, capture_output=True, text=True, timeout=60)


@pytest.mark.parametrize("pythons, picked", [
    ({"python3": "3.12"}, "python3"),  # Ubuntu 24.04
    ({"python3": "3.13"}, "python3"),  # Debian 13
    ({"python3": "3.10", "python3.11": "3.11"}, "python3.11"),  # Ubuntu 22.04 with python3.11 installed
    ({"python3.12": "3.12", "python3": "3.13"}, "python3.12"),
])
def test_a_python_from_3_11_to_3_13_is_chosen(tmp_path, pythons, picked):
    result = chosen(tmp_path, **pythons)
    assert result.returncode == 0 and result.stdout.strip() == str(tmp_path / picked), result


def test_too_old_a_python_is_refused(tmp_path):
    assert chosen(tmp_path, python3="3.10").returncode != 0


def test_python_chooses_one_and_a_wrong_choice_is_refused(tmp_path):
    assert chosen(tmp_path, "python3.13", python3="3.11", **{"python3.13": "3.13"}).stdout.strip() == \
        str(tmp_path / "python3.13")
    assert chosen(tmp_path, "python3.10", **{"python3.10": "3.10"}).returncode != 0
