"""The deployment's name, kept at its first start and held whatever the host is called later (common/identity.py)."""

import logging
import os
import socket
import stat

import pytest

from common.config import ConfigError, deployment_file, load
from common.identity import keep_deployment
from tests.helpers.fsync_spy import FsyncSpy


def settings(tmp_path, **env):
    return load({"STREAMING_VAR": str(tmp_path), **env})


def test_a_renamed_host_keeps_the_name_its_first_start_kept(tmp_path, monkeypatch):
    monkeypatch.setattr(socket, "gethostname", lambda: "3f2a9c1b7d4e")  # a container's id
    first = settings(tmp_path)
    assert first.deployment == "3f2a9c1b7d4e", "the first start's default is the host's name"
    assert not deployment_file(first.data_dir).exists(), "reading the settings keeps nothing: a start does"
    keep_deployment(first.data_dir, first.deployment)
    monkeypatch.setattr(socket, "gethostname", lambda: "9e8d7c6b5a40")  # the container recreated
    assert settings(tmp_path).deployment == "3f2a9c1b7d4e"


def test_an_explicit_deployment_wins_and_replacing_the_kept_name_warns_naming_both(tmp_path, caplog):
    data_dir = settings(tmp_path).data_dir
    keep_deployment(data_dir, "lightsail-1")
    assert settings(tmp_path, DEPLOYMENT="desk2").deployment == "desk2"
    with caplog.at_level(logging.WARNING):
        keep_deployment(data_dir, "desk2")
    [warning] = caplog.records
    assert (warning.deployment, warning.kept_deployment) == ("desk2", "lightsail-1")
    assert settings(tmp_path).deployment == "desk2", "the name now in use is the one kept"
    with caplog.at_level(logging.WARNING):
        keep_deployment(data_dir, "desk2")
    assert len(caplog.records) == 1, "the same name again is no change"


@pytest.mark.parametrize("content, says", [
    (b"Desk/One\n", "is not a deployment name; accepted: 1-63 of a-z 0-9"),
    (b"", "is not a deployment name"),  # what a rename without fsync can leave after a power cut
    (b"\xff\xfe", "cannot be read"),
])
def test_a_damaged_deployment_file_is_refused_naming_it_and_what_it_accepts(tmp_path, content, says):
    file = deployment_file(settings(tmp_path).data_dir)
    file.parent.mkdir(parents=True)
    file.write_bytes(content)
    with pytest.raises(ConfigError) as refused:
        settings(tmp_path, DEPLOYMENT="desk2")
    assert str(file) in str(refused.value) and says in str(refused.value), refused.value


def test_the_name_is_kept_durably_and_readable_by_the_tools_a_user_runs(tmp_path, monkeypatch):
    spy = FsyncSpy(monkeypatch)
    data_dir = tmp_path / "data"  # not made yet: its own entry is made durable too
    keep_deployment(data_dir, "desk2")
    file = deployment_file(data_dir)
    assert spy.steps[0] == ("fsync directory",) and spy.wrote(file)
    assert file.read_text() == "desk2\n" and os.listdir(data_dir) == ["deployment"]
    assert stat.S_IMODE(file.stat().st_mode) & 0o044, "the name is no secret: `make storage` reads it too"
