"""Importing market hours in a fresh interpreter leaves pandas unloaded (the calendar loads it when needed)."""

from __future__ import annotations

import subprocess
import sys


def test_importing_the_module_leaves_pandas_unloaded():
    """pandas costs tens of MB on a 512 MB host: only the calendar fallback may load it."""
    code = "import sys, common.feed.market_hours; sys.exit('pandas' in sys.modules)"
    assert subprocess.run([sys.executable, "-c", code], check=False).returncode == 0


