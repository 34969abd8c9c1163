"""The journal on a real full disk (a tiny tmpfs): refused cleanly, nothing torn."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from common.transport.journal import (
    JournalFull,
    JournalWriter,
    TornTail,
    read,
)
from tests.helpers.journal_frames import frame


def test_disk_full_raises_and_leaves_nothing_torn(tmp_path: Path) -> None:
    if os.geteuid() != 0:
        pytest.skip("mounting a tiny tmpfs to fill needs root (CI runs as root)")
    mount = tmp_path / "tiny"
    mount.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", str(mount)], check=True)
    try:
        writer = JournalWriter(mount / "journal", "ingest", 1)
        appended = []
        with pytest.raises(JournalFull, match=str(mount / "journal")):
            for seq in range(1, 100_000):
                payload = frame("ingest/trade/SPY", 1, seq, pad=seq % 700)
                writer.append(payload)
                appended.append(payload)
        assert len(appended) > 50
        with pytest.raises(JournalFull):  # still full: still refused, still clean
            writer.append(frame("ingest/trade/SPY", 1, 0, pad=5000))
        torn: list[TornTail] = []
        assert list(read(mount / "journal", on_torn=torn.append)) == appended
        assert torn == []
        writer.close()
    finally:
        subprocess.run(["umount", str(mount)], check=True)


