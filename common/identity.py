"""What keys a deployment's frames, kept on disk so that it holds across restarts: its name and each publisher's epoch.

Streams, journals and offsets are named `{deployment}/{publisher}/{kind}`
(`common/transport/topics.py`), and frames are ordered by `(epoch, seq)`
(`common/transport/sequence.py`). Taken afresh at every start, neither holds:
the host's name changes when a container is recreated or a snapshot restored
(and the indicator then replays nothing, bar repair sees no gap, an unstored
journal tail under the old name is pruned as consumed), and a clock stepped
back makes a new run's frames look already stored. So, before a publisher
sends its first frame, the deployment's name is kept in DATA_DIR (`config.load`
takes it from there, unless DEPLOYMENT says otherwise) and its epoch for this
run is chosen by `sequence.next_epoch` from the last one it kept. Both are
written durably (`common/durable.py`): a power cut leaves the old or the new.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable
from pathlib import Path

from common.config import ConfigError, deployment_file, kept_deployment
from common.durable import fsync_directory, write_durably
from common.transport.sequence import next_epoch

log = logging.getLogger(__name__)

#: The largest epoch `stream_offsets.epoch` (int8) can hold: a kept one must leave room for the next.
EPOCH_MAX = 2**63 - 1


def _write_kept(path: Path, text: str) -> None:
    """Write `path` durably (`common/durable.py`), its directory made first if need be, durably too. Readable by
    all (0644): neither a name nor an epoch is a secret, and the tools a user runs read the name."""
    if not path.parent.is_dir():
        path.parent.mkdir(parents=True, exist_ok=True)
        fsync_directory(path.parent.parent)
    write_durably(path, text.encode(), mode=0o644)


def keep_deployment(data_dir: Path, deployment: str) -> None:
    """Keep `deployment` as the name of what `data_dir` holds. A different name kept before means DEPLOYMENT
    now names another: it wins and is kept from now on, with a warning naming both, since what the journals
    and offsets hold under the old name is no longer this deployment's."""
    kept = kept_deployment(data_dir)
    if kept == deployment:
        return
    if kept is not None:
        log.warning("DEPLOYMENT differs from the name this data directory was kept under: streams, journals and "
                    "offsets are keyed by it, so what was journaled or committed under the kept name is not replayed "
                    "or stored under the new one; set DEPLOYMENT to the kept name to resume it",
                    extra={"deployment": deployment, "kept_deployment": kept, "file": str(deployment_file(data_dir))})
    _write_kept(deployment_file(data_dir), f"{deployment}\n")


def epoch_file(data_dir: Path, publisher: str) -> Path:
    """Where `publisher`'s last epoch is kept."""
    return data_dir / "epochs" / publisher


def last_epoch(file: Path) -> int | None:
    """The epoch kept in `file`, None before the publisher's first run; checked as a setting is: a file that
    cannot be read or holds no epoch is a ConfigError naming it and what it accepts, never a guess."""
    accepted = (f"accepted: the publisher's last epoch, a whole number from 1 to {EPOCH_MAX - 1} (nanoseconds); "
                "delete the file only if the clock is known to be later than that run's start")
    try:
        raw = file.read_text(encoding="utf-8")
    except FileNotFoundError:
        return None
    except (OSError, UnicodeDecodeError) as error:
        raise ConfigError(f"{file} cannot be read ({error}); {accepted}") from None
    text = raw.strip()
    if not re.fullmatch(r"[0-9]{1,19}", text) or not 1 <= int(text) < EPOCH_MAX:
        raise ConfigError(f"{file} holds {raw[:80]!r}, which is not an epoch; {accepted}")
    return int(text)


def claim_epoch(data_dir: Path, publisher: str, clock: Callable[[], int]) -> int:
    """`publisher`'s epoch for this run (`clock`: the wall clock in ns), kept before it is used, so that the next
    run's is larger whatever the clock reads then."""
    file = epoch_file(data_dir, publisher)
    epoch = next_epoch(clock(), last_epoch(file))
    _write_kept(file, f"{epoch}\n")
    return epoch
