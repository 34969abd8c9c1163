"""Who may drive the simulator: this run's control token, a JSON content type, a bounded body.

`POST /sim/inject` and `POST /sim/fault` make the simulator send whatever the
caller chooses into the pipeline. So each start of the simulator makes a new
control token and writes it to FILE in its run directory, readable by its
owner only (0600): the repo's own tools read it there and send it in HEADER
(`headers`); a request without it is refused (401), with another token too
(403). A browser never sends a custom header or `Content-Type:
application/json` in a CORS "simple" request, so a web page's `text/plain`
POST is refused as well (and its preflight is never answered). Every POST
body is capped at MAX_BODY, refused (413) before it is read.

The checks are pure; `write_token` and `read_token` are the file.
"""

from __future__ import annotations

import hmac
import secrets
from pathlib import Path

from common.config import private_directory
from common.durable import write_durably

HEADER = "X-Simulator-Token"
#: The control token's file in the simulator's run directory (RUN_DIR, else STREAMING_VAR/run).
FILE = "simulator-control-token"
#: The largest POST body accepted, in bytes: an injected frame is at most what a client takes (1 MiB).
MAX_BODY = 1024 * 1024
#: The POST endpoints that need the control token.
PATHS = ("/sim/inject", "/sim/fault")


class Refused(Exception):
    """A request the simulator refuses: its HTTP status and a one-line reason for the caller."""

    def __init__(self, status: int, reason: str):
        super().__init__(reason)
        self.status = status
        self.reason = reason


def new_token() -> str:
    return secrets.token_urlsafe(32)


def check(expected: str, sent: str | None, content_type: str | None) -> None:
    """Refuse a control request that lacks this run's token (401), sends another (403), or is not JSON (415)."""
    if not sent:
        raise Refused(401, f"no {HEADER} header: send the token the simulator wrote to {FILE} in its run directory")
    if not hmac.compare_digest(sent.encode(), expected.encode()):
        raise Refused(403, f"{HEADER} is not this run's token: the simulator writes a new one to {FILE} in its run "
                           "directory at every start")
    if (content_type or "").split(";")[0].strip().lower() != "application/json":
        raise Refused(415, f"Content-Type is {content_type!r}; accepted: application/json")


def body_length(raw: str | None) -> int:
    """The body's length from its Content-Length header (none: no body); refused over MAX_BODY (413)."""
    if raw is None:
        return 0
    if not raw.strip().isdigit():
        raise Refused(400, f"Content-Length {raw!r} is not a number of bytes")
    length = int(raw)
    if length > MAX_BODY:
        raise Refused(413, f"a body of {length} bytes is over the {MAX_BODY} bytes accepted")
    return length


def write_token(run_dir: Path, token: str) -> Path:
    """Write `token` to FILE in `run_dir`, 0600; the directory is made private (0700) only when this creates it."""
    private_directory(run_dir)
    path = run_dir / FILE
    write_durably(path, token.encode(), mode=0o600)
    return path


def read_token(run_dir: Path) -> str:
    return (run_dir / FILE).read_text().strip()


def headers(run_dir: Path) -> dict[str, str]:
    """The headers of a control request to the simulator whose run directory is `run_dir`."""
    return {HEADER: read_token(run_dir), "Content-Type": "application/json"}
