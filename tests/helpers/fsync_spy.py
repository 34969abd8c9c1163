"""What a file write did to the disk, in order: each fsync (of a file, with its size then, or of a directory) and
each rename into place. A power cut between two of these steps keeps only what the steps before it made durable."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest


class FsyncSpy:
    def __init__(self, monkeypatch: pytest.MonkeyPatch):
        self.steps: list[tuple] = []
        self._fsync, self._replace = os.fsync, os.replace
        monkeypatch.setattr(os, "fsync", self.fsync)
        monkeypatch.setattr(os, "replace", self.replace)

    def fsync(self, fd: int) -> None:
        status = os.fstat(fd)
        if stat.S_ISDIR(status.st_mode):
            self.steps.append(("fsync directory",))
        else:
            self.steps.append(("fsync file", status.st_size))
        self._fsync(fd)

    def replace(self, source: str | os.PathLike, target: str | os.PathLike) -> None:
        self.steps.append(("replace", Path(target).name))
        self._replace(source, target)

    def wrote(self, path: Path) -> bool:
        """Was `path` written whole, synced, renamed into place, and its directory synced after, in that order?"""
        size = path.stat().st_size
        return self.steps[-3:] == [("fsync file", size), ("replace", path.name), ("fsync directory",)]
