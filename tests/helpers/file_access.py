"""Files and directories with the owners and modes an operator's host gives them, and a root that obeys them."""

from __future__ import annotations

import os
from pathlib import Path

#: Run a command as root without root's power to read any file (CAP_DAC_OVERRIDE, CAP_DAC_READ_SEARCH): it then
#: meets a file's owner and mode as the container's uid 10001 meets a bind-mounted .env of the host user's.
AS_ROOT_OBEYING_MODES = ["setpriv", "--bounding-set", "-dac_override,-dac_read_search", "--"]
#: nobody: a user that owns nothing here, as the image's `streaming` owns nothing of the host's.
NOBODY = 65534


def shared_directory(path: Path) -> Path:
    """A directory open to every user (0755), made by someone other than the service, as /run or /etc are."""
    path.mkdir()
    path.chmod(0o755)
    return path


def private_file(path: Path, text: str, owner: int = 0) -> Path:
    """`text` in a file only `owner` may read (0600), in a directory anyone may enter: a `chmod 600 .env`."""
    path.parent.chmod(0o755)
    path.write_text(text)
    path.chmod(0o600)
    os.chown(path, owner, -1)
    return path
