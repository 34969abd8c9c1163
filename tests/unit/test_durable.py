"""Small state files: written so a power cut leaves the old one or the new one, never an empty one; read back so a
damaged one is set aside and said, never raised again every minute."""

from __future__ import annotations

import errno
import json
import logging
import os
from pathlib import Path

import msgspec
import pytest

from common.durable import read_or_set_aside, write_durably
from common.feed.schwab_client import write_token_file
from common.simulator.report import Report
from common.transport import delivery
from common.transport.delivery import Follower, SharedOffsets, passed_by_all, share_offsets, shared_offsets
from common.transport.messages import Envelope
from tests.helpers.fsync_spy import FsyncSpy

_offsets = msgspec.json.Decoder(SharedOffsets).decode


def test_a_file_is_synced_whole_before_its_rename_and_its_directory_after(tmp_path: Path, monkeypatch) -> None:
    spy = FsyncSpy(monkeypatch)
    path = tmp_path / "state.json"

    write_durably(path, b'{"a": 1}')

    assert path.read_bytes() == b'{"a": 1}'
    assert spy.steps == [("fsync file", 8), ("replace", "state.json"), ("fsync directory",)]
    assert path.stat().st_mode & 0o777 == 0o600, "private unless asked otherwise"
    assert os.listdir(tmp_path) == ["state.json"], "no temporary file left beside it"


def test_a_write_that_fails_leaves_the_old_file_and_no_temporary(tmp_path: Path, monkeypatch) -> None:
    path = tmp_path / "state.json"
    write_durably(path, b"old")

    def disk_full(fd: int, data) -> int:
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(os, "write", disk_full)
    with pytest.raises(OSError, match="No space"):
        write_durably(path, b"new")
    monkeypatch.undo()

    assert path.read_bytes() == b"old" and os.listdir(tmp_path) == ["state.json"]


def test_a_missing_file_reads_as_absent_and_is_not_said(tmp_path: Path, caplog) -> None:
    with caplog.at_level(logging.WARNING):
        assert read_or_set_aside(tmp_path / "writer.json", _offsets) is None
    assert caplog.records == []


@pytest.mark.parametrize("content", [b"", b"\0\0\0\0", b'{"follows": [', b'{"follows": 3, "positions": {}}'],
                         ids=["empty", "zeros", "cut-short", "another-shape"])
def test_an_unreadable_file_is_set_aside_said_once_and_read_as_absent(tmp_path: Path, caplog, content: bytes) -> None:
    path = tmp_path / "writer.json"
    path.write_bytes(content)

    with caplog.at_level(logging.ERROR):
        assert read_or_set_aside(path, _offsets) is None
        assert read_or_set_aside(path, _offsets) is None

    aside = tmp_path / "writer.json.unreadable"
    assert not path.exists() and aside.read_bytes() == content, "kept for a look, under a name nothing reads"
    [line] = caplog.records
    assert line.levelno == logging.ERROR and "unreadable" in line.getMessage()
    assert (line.path, line.set_aside_as) == (str(path), str(aside)) and line.reason


def test_a_file_replaced_while_it_was_judged_is_read_not_set_aside(tmp_path: Path, monkeypatch) -> None:
    path = tmp_path / "writer.json"
    path.write_bytes(b"")
    good = msgspec.json.encode(SharedOffsets(("d/ingest/trade",), {}))
    judged = []

    def decode_while_the_owner_replaces_it(data: bytes) -> SharedOffsets:
        if not judged:
            judged.append(data)
            write_durably(path, good)
        return _offsets(data)

    assert read_or_set_aside(path, decode_while_the_owner_replaces_it) == _offsets(good)
    assert path.read_bytes() == good and not (tmp_path / "writer.json.unreadable").exists()


def test_offsets_are_shared_durably_and_an_empty_file_of_them_is_set_aside(tmp_path: Path, monkeypatch, caplog) -> None:
    spy = FsyncSpy(monkeypatch)
    share_offsets(tmp_path / "writer.json", ("d/ingest/trade",), {"d/ingest/trade": (3, 41)})
    assert spy.wrote(tmp_path / "writer.json")
    (tmp_path / "indicator.json").write_bytes(b"")  # what a power cut left of a rename without fsync

    with caplog.at_level(logging.ERROR):
        assert shared_offsets(tmp_path / "indicator.json") is None
        assert passed_by_all(tmp_path) == (("d/ingest/trade",), {"d/ingest/trade": (3, 41)})

    assert (tmp_path / "indicator.json.unreadable").exists()
    assert str(tmp_path / "indicator.json") in [line.path for line in caplog.records]


def test_a_follower_shares_again_an_offsets_file_set_aside_although_nothing_moved(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setattr(delivery, "SHARE_INTERVAL", 0.0)
    path = tmp_path / "indicator.json"
    follower = Follower(lambda publisher: tmp_path / publisher, ("d/ingest/trade",), lambda frame: None,
                        lost=lambda gap: None, torn=lambda tail: None, damaged=lambda damage: None)
    follower.take(Envelope("d/ingest/trade", 1, 1, 0, []))
    follower.share(path)
    path.write_bytes(b"")
    assert shared_offsets(path) is None, "set aside"

    follower.share(path)

    assert shared_offsets(path) == SharedOffsets(("d/ingest/trade",), {"d/ingest/trade": (1, 1)})


def test_the_token_file_is_written_durably_and_private(tmp_path: Path, monkeypatch) -> None:
    spy = FsyncSpy(monkeypatch)
    path = tmp_path / "schwab_token.json"
    wrapped = {"creation_timestamp": 1, "token": {"access_token": "A.test", "refresh_token": "R.test"}}

    write_token_file(path, wrapped)

    assert json.loads(path.read_text()) == wrapped and path.stat().st_mode & 0o777 == 0o600
    assert spy.wrote(path)


def test_the_simulators_report_is_written_durably(tmp_path: Path, monkeypatch) -> None:
    spy = FsyncSpy(monkeypatch)
    path = tmp_path / "sim-report.json"

    Report(seed=1).write(path)

    assert json.loads(path.read_text())["seed"] == 1 and spy.wrote(path)

