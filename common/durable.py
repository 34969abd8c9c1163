"""Small state files (offsets, the token, reports) written so a power cut leaves the old or the new, never an empty one.

Renaming a new file over the old one is atomic, but it is not durable: on
XFS (Amazon Linux 2023's default) and ext4 alike a power cut can keep the
rename and lose the data it named, so the file comes back empty. Hence
`write_durably`: the data is fsynced before the rename, and the directory
holding the new name after it.

And read back so that a file damaged anyway (by hand, by a disk, by an
older version) is said once and set aside as `{name}.unreadable`, then read
as absent: its owner writes it again, where raising would stop every reader
again at each read, for ever.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

import msgspec

log = logging.getLogger(__name__)

T = TypeVar("T")

#: Added to the name of a file that could not be read, set aside where no reader looks.
UNREADABLE = ".unreadable"


def fsync_directory(directory: Path) -> None:
    """Make the names in `directory` (a file created or renamed there) survive a power cut."""
    fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def replace_durably(staged: Path, path: Path) -> None:
    """Rename a finished file into place as `write_durably` does: its data fsynced first, its directory after."""
    with open(staged, "rb") as handle:
        os.fsync(handle.fileno())
    os.replace(staged, path)
    fsync_directory(path.parent)


def write_durably(path: Path, data: bytes, mode: int = 0o600) -> None:
    """Replace `path` with `data`: written to a temporary file beside it, fsynced, renamed into place, and the
    directory fsynced. A reader sees the old file or the new one; after a power cut, so does the next start.
    A failure leaves the old file as it was, and no temporary file. Private (0600) unless `mode` says otherwise.
    """
    staging = path.with_name(f".{path.name}.{os.getpid()}.tmp")  # per process: two writers never share one
    fd = os.open(staging, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, mode)
    try:
        try:
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view):]
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(staging, path)
    except BaseException:
        staging.unlink(missing_ok=True)
        raise
    fsync_directory(path.parent)


def read_or_set_aside(path: Path, decode: Callable[[bytes], T]) -> T | None:
    """`path` decoded, or None when it is absent; a file `decode` (a msgspec decoder's) refuses is set aside as
    `{name}.unreadable`, said in an ERROR line, and read as absent.

    A file its owner replaced while it was judged is not set aside: the new one is read instead. Readers in
    several processes may judge one file at once: one sets it aside and says so.
    """
    try:
        with open(path, "rb") as file:
            data = file.read()
            try:
                return decode(data)
            except msgspec.DecodeError as error:
                reason = str(error)
            judged = os.fstat(file.fileno())
        current = os.stat(path)
    except FileNotFoundError:
        return None
    if not os.path.samestat(judged, current):
        return read_or_set_aside(path, decode)
    aside = path.with_name(path.name + UNREADABLE)
    try:
        os.replace(path, aside)
    except FileNotFoundError:
        return None  # another reader set it aside first, and said so
    log.error("unreadable state file set aside; read as absent until its owner writes it again",
              extra={"path": str(path), "set_aside_as": str(aside), "reason": reason, "size": len(data)})
    return None
