"""Configuration from the environment, read once per process, every value checked.

`SETTINGS` is the one list of what a user can set: its name, its default,
what it means and what it accepts. `.env.example`, `make settings` and the
checks before `make run` derive from it; `load()` builds the `Config` every
actor reads. Names are the seed's where it had one (`STREAM_TICKER`,
`BATCH_SIZE`, `BATCH_INTERVAL`, `SCHWAB_APP_KEY`, `SCHWAB_APP_SECRET`).

A bad value fails at start, before anything runs, with a `ConfigError` that
names the variable, shows the value and says what is accepted. Two rules
protect a user's data: the simulator never streams into a real database
unless asked (`STREAM_SOURCE=simulator`), and a Schwab key without its
secret (or the reverse) is an error, never "no credentials". A replay
(`STREAM_SOURCE=replay`, `common/feed/replay.py`) is only ever asked for, needs no
credentials, and its recording must be readable before anything starts.
"""

from __future__ import annotations

import ipaddress
import logging
import math
import os
import re
import socket
import stat
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlsplit

from common import symbols


ACTORS = ("ingest", "indicator", "options", "writer", "metrics")
MARKET_SESSIONS = ("pre", "regular", "post")
SOURCES = ("schwab", "simulator", "replay")
#: The settings that choose an address to listen on: each a loopback address unless ALLOW_PUBLIC_BIND=true.
BIND_SETTINGS = ("METRICS_HTTP_HOST", "BUS_HOST", "SIM_HOST")

_DURATION = re.compile(r"\s*([0-9]*\.?[0-9]+)\s*(ms|s|m|h|d)?\s*")
_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}

log = logging.getLogger("config")


class ConfigError(ValueError):
    """A setting that can never work; the message names the variable, its value and what is accepted."""


class Rejected(ValueError):
    """Raised by a reader: the text says what is accepted."""


def _human(seconds: float) -> str:
    """60 → '1m', 0.05 → '50ms': a duration as a person would write it."""
    for unit, size in sorted(_UNITS.items(), key=lambda item: -item[1]):
        value = seconds / size
        if value >= 1 and abs(value - round(value)) < 1e-9:
            return f"{round(value)}{unit}"
    return f"{seconds:g}s"


def parse_duration(name: str, raw: str) -> float:
    """Seconds from '0.05', '50ms', '2s', '1m', '24h' or '1d'. A bare number is seconds, as in the seed."""
    match = _DURATION.fullmatch(raw)
    if not match:
        raise ConfigError(f"{name}={raw!r} is not a duration (examples: 0.05, 50ms, 2s, 1m, 24h)")
    return float(match.group(1)) * _UNITS[match.group(2) or "s"]


def duration(low: float, high: float, above: bool = False) -> Callable[[str], float]:
    """A duration from `low` (excluded when `above`) to `high` seconds."""
    accepted = f"a duration {'above' if above else 'from'} {_human(low)} up to {_human(high)} (e.g. 500ms, 2s, 1m)"

    def read(raw: str) -> float:
        match = _DURATION.fullmatch(raw)
        if not match:
            raise Rejected(f"is not a duration; accepted: {accepted}")
        value = float(match.group(1)) * _UNITS[match.group(2) or "s"]
        if value > high or value < low or (above and value == low):
            raise Rejected(f"is out of range; accepted: {accepted}")
        return value

    return read


def whole(low: int, high: int) -> Callable[[str], int]:
    accepted = f"a whole number from {low} to {high}"

    def read(raw: str) -> int:
        text = raw.strip()
        if not re.fullmatch(r"[+-]?[0-9]+", text):
            raise Rejected(f"is not a whole number; accepted: {accepted}")
        value = int(text)
        if not low <= value <= high:
            raise Rejected(f"is out of range; accepted: {accepted}")
        return value

    return read


def number(low: float, high: float, above: bool = False) -> Callable[[str], float]:
    """A finite number from `low` (excluded when `above`) to `high`."""
    accepted = f"a number {'above' if above else 'from'} {low:g} {'and at most' if above else 'to'} {high:g}"

    def read(raw: str) -> float:
        try:
            value = float(raw.strip())
        except ValueError:
            raise Rejected(f"is not a number; accepted: {accepted}") from None
        if not math.isfinite(value) or value > high or value < low or (above and value == low):
            raise Rejected(f"is out of range; accepted: {accepted}")
        return value

    return read


def choice(*options: str) -> Callable[[str], str]:
    def read(raw: str) -> str:
        value = raw.strip().lower()
        if value not in options:
            raise Rejected(f"is not one of {', '.join(options)}")
        return value

    return read


def switch(raw: str) -> bool:
    value = raw.strip().lower()
    if value in ("true", "1", "yes", "on"):
        return True
    if value in ("false", "0", "no", "off", ""):
        return False
    raise Rejected("is not a switch; accepted: true or false")


def text(raw: str) -> str:
    if any(ord(character) < 32 for character in raw):
        raise Rejected("holds a control character (a stray carriage return?); accepted: one line of text")
    return raw.strip()


def http_url(raw: str) -> str:
    value = text(raw)
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise Rejected("is not an http(s) URL; accepted: e.g. https://127.0.0.1:8182")
    try:
        parts.port
    except ValueError:
        raise Rejected("has a port outside 1-65535") from None
    return value


def simulator_url(raw: str) -> str:
    """SIMULATOR_URL: plain http only to this machine. The actors send the simulator their token and the tools
    their control token: over the network, that would be in clear to whoever answers."""
    value = http_url(raw)
    parts = urlsplit(value)
    if parts.scheme == "http" and not loopback(parts.hostname or ""):
        raise Rejected("is plain http to another host; accepted: http:// to a loopback address (127.0.0.1, ::1, "
                       "localhost), or https:// to any host")
    return value


def simulator_token_path(schwab_token_path: Path) -> Path:
    """The simulator's token file: beside Schwab's and never it (`<name>.simulator.json`), so that a simulated
    run neither sends the real refresh token to the simulator nor overwrites it with a simulated one."""
    return schwab_token_path.with_name(f"{schwab_token_path.stem}.simulator{schwab_token_path.suffix}")


def path(raw: str) -> Path:
    return Path(text(raw)).expanduser()


def loopback(host: str) -> bool:
    """Whether a server listening on `host` stays inside this machine: localhost, 127.0.0.0/8 or ::1. Any other
    name counts as beyond it: what it resolves to is not known here."""
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


_CREDENTIAL = re.compile(r"[A-Za-z0-9._~+/=-]{16,200}")


def credential(raw: str) -> str:
    """A token sent in an HTTP header: long enough not to be guessed, nothing a header would mangle."""
    value = raw.strip()
    if not _CREDENTIAL.fullmatch(value):
        raise Rejected("is not accepted; accepted: 16 to 200 of A-Z a-z 0-9 . _ ~ + / = - (e.g. the output of "
                       "openssl rand -hex 16)")
    return value


def open_to_others(directory: Path) -> str | None:
    """A warning when users other than its owner may list or enter `directory`, which should be private; None
    when it is private or does not exist."""
    try:
        mode = stat.S_IMODE(directory.stat().st_mode)
    except FileNotFoundError:
        return None
    if not mode & 0o077:
        return None
    return (f"{directory} is open to other users (mode {mode:04o}) and is left as it is: the service changes only "
            f"directories it creates. Make it private (chmod 700 {directory}) or choose a directory of its own")


def private_directory(directory: Path) -> None:
    """Create `directory` readable by its owner only (0700). One that exists is never changed, whoever made it:
    RUN_DIR=/run or SCHWAB_TOKEN_PATH=/etc/schwab.json as root must not close the host's /run or /etc to its
    other users. It is named in a warning if others can reach into it."""
    try:
        directory.mkdir(parents=True, mode=0o700)
    except FileExistsError:
        if warning := open_to_others(directory):
            log.warning(warning)


_BUCKET = re.compile(r"(?!xn--)(?!.*-s3alias$)[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]")


def s3_url(raw: str) -> str:
    """s3://bucket[/prefix]: a bucket name S3 accepts (3-63 of a-z 0-9 . -, no '..', not an IP address)."""
    value = text(raw)
    parts = urlsplit(value)
    bucket = parts.netloc
    if (parts.scheme != "s3" or parts.query or parts.fragment or not _BUCKET.fullmatch(bucket) or ".." in bucket
            or re.fullmatch(r"[0-9.]+", bucket)):
        raise Rejected("is not an S3 URL; accepted: s3://bucket or s3://bucket/prefix (bucket: 3-63 of a-z 0-9 . -)")
    return f"s3://{bucket}/{parts.path.strip('/')}".rstrip("/")


def archive_settings(env: Mapping[str, str], data_dir: Path) -> dict[str, Any]:
    """The archive's `Config` fields; its S3 key id and secret come both or not at all."""
    key, secret = read(env, "ARCHIVE_S3_ACCESS_KEY_ID"), read(env, "ARCHIVE_S3_SECRET_ACCESS_KEY")
    if bool(key) != bool(secret):
        present, missing = (("ARCHIVE_S3_ACCESS_KEY_ID", "ARCHIVE_S3_SECRET_ACCESS_KEY") if key
                            else ("ARCHIVE_S3_SECRET_ACCESS_KEY", "ARCHIVE_S3_ACCESS_KEY_ID"))
        raise ConfigError(f"{present} is set but {missing} is not: S3 needs both, or neither (the default AWS "
                          "credentials)")
    return {"archive_dir": read(env, "ARCHIVE_DIR") or data_dir / "archive",
            "archive_s3_url": read(env, "ARCHIVE_S3_URL"), "archive_s3_endpoint": read(env, "ARCHIVE_S3_ENDPOINT"),
            "archive_s3_region": read(env, "ARCHIVE_S3_REGION"), "archive_s3_access_key_id": key,
            "archive_s3_secret_access_key": secret}


_DEPLOYMENT = re.compile(r"[a-z0-9][a-z0-9._-]{0,62}")


def deployment_name(raw: str) -> str:
    value = raw.strip().lower()
    if not _DEPLOYMENT.fullmatch(value):
        raise Rejected("is not a deployment name; accepted: 1-63 of a-z 0-9 . _ - starting with a letter or digit")
    return value


def host_deployment() -> str:
    """This host's name as a deployment name: unique per host, but not stable (a recreated container, a restored
    snapshot), so only the first start's default; `kept_deployment` holds it from then on."""
    name = re.sub(r"[^a-z0-9._-]+", "-", socket.gethostname().lower()).strip("-._")[:63]
    return name or "streaming"


def deployment_file(data_dir: Path) -> Path:
    """Where a publisher's first start keeps the deployment's name (`common/identity.py` writes it)."""
    return data_dir / "deployment"


def kept_deployment(data_dir: Path) -> str | None:
    """The name this data directory's streams, journals and offsets are keyed by, kept at its first start; None
    before that. Checked as a setting is: a file that cannot be read, or holds no deployment name, is a
    ConfigError naming it and what it accepts, never a silent new name."""
    file = deployment_file(data_dir)
    remedy = "it keeps the name this deployment first started under: write that name back, or set DEPLOYMENT"
    try:
        raw = file.read_text(encoding="utf-8")
    except FileNotFoundError:
        return None
    except (OSError, UnicodeDecodeError) as error:
        raise ConfigError(f"{file} cannot be read ({error}); accepted: a readable text file holding a deployment "
                          f"name; {remedy}") from None
    try:
        return deployment_name(raw)
    except Rejected as problem:
        raise ConfigError(f"{file} holds {raw[:80]!r}, which {problem}; {remedy}") from None


def readable(path: Path) -> str | None:
    """Why STREAM_REPLAY's `path` cannot be replayed (a sentence), or None when it can be opened for reading."""
    if path.is_dir():
        return "is a directory"
    try:
        with path.open("rb"):
            return None
    except OSError as error:
        return f"cannot be read ({error.strerror or error})"


def recordable(path: Path) -> str | None:
    """Why STREAM_RECORD's recording cannot be appended at `path` (a sentence), or None."""
    if path.is_dir():
        return "is a directory"
    parent = path.parent
    if not parent.is_dir():
        return f"is in {parent}, which is not a directory"
    if not os.access(parent, os.W_OK | os.X_OK) and not os.access(path, os.W_OK):
        return f"is in {parent}, where this user cannot write"
    return None


def parse_tickers(raw: str) -> tuple[str, ...]:
    tickers = tuple(dict.fromkeys(t.strip().upper() for t in raw.split(",") if t.strip()))
    if not tickers:
        raise ConfigError("STREAM_TICKERS is empty: name at least one symbol, e.g. STREAM_TICKERS=SPY,QQQ")
    bad = [t for t in tickers if symbols.kind_of(t) is None]
    if bad:
        raise ConfigError(f"STREAM_TICKERS has symbols Schwab cannot stream: {', '.join(bad)} "
                          "(accepted: comma-separated symbols such as SPY,QQQ,BRK.B, indexes such as $SPX,$VIX, and "
                          "futures such as /ES,/ESZ26, without quotes)")
    return tickers


def parse_sessions(raw: str) -> tuple[str, ...]:
    """MARKET_SESSIONS: which of Schwab's sessions to stream, e.g. 'regular' or 'pre,regular,post'."""
    sessions = tuple(dict.fromkeys(s.strip().lower() for s in raw.split(",") if s.strip()))
    bad = [s for s in sessions if s not in MARKET_SESSIONS]
    if not sessions or bad:
        raise ConfigError(f"MARKET_SESSIONS={raw!r}: choose from {', '.join(MARKET_SESSIONS)}")
    return sessions


@dataclass(frozen=True)
class Setting:
    """One variable a user may set. `default` is what leaving it unset means, as `.env` would spell it
    ("" for nothing); `read` turns the text into a value or raises `Rejected` saying what is accepted."""

    name: str
    default: str
    meaning: str
    read: Callable[[str], Any] = text
    secret: bool = False


PORT = whole(1, 65535)


def store_interval(raw: str) -> float:
    """OPTION_STORE_INTERVAL: 0, or a duration from 1 s to 1 h that divides an hour, so that every interval
    starts on the New York clock (New York is a whole number of hours from UTC)."""
    accepted = "0 (every quote) or a duration from 1s to 1h that divides an hour (1s, 5s, 15s, 30s, 1m, 5m, 15m, 1h)"
    match = _DURATION.fullmatch(raw)
    if not match:
        raise Rejected(f"is not a duration; accepted: {accepted}")
    value = float(match.group(1)) * _UNITS[match.group(2) or "s"]
    if value == 0:
        return 0.0
    milliseconds = round(value * 1000)
    if abs(value * 1000 - milliseconds) > 1e-6 or not 1000 <= milliseconds <= 3_600_000 or 3_600_000 % milliseconds:
        raise Rejected(f"is not accepted; accepted: {accepted}")
    return value

SETTINGS: tuple[Setting, ...] = (
    # The seed's five first.
    Setting("STREAM_TICKERS", "SPY", "comma-separated symbols to stream: tickers (SPY), indexes ($SPX, stored as "
            "levels) and futures (/ES, /ESZ26); STREAM_TICKER, the seed's name, still works",
            parse_tickers),
    Setting("SCHWAB_APP_KEY", "", "your Schwab app's key (developer.schwab.com); set it with its secret"),
    Setting("SCHWAB_APP_SECRET", "", "your Schwab app's secret; set it with its key", secret=True),
    Setting("SUPABASE_URL", "", "not used (the seed's REST URL): set DATABASE_URL to the project's session pooler"),
    Setting("SUPABASE_SERVICE_ROLE_KEY", "", "not used (the seed's REST key): never needed on the host", secret=True),
    # Where data comes from and goes.
    Setting("DATABASE_URL", "", "libpq URL of the database; unset: an embedded Postgres under STREAMING_VAR/pg",
            secret=True),
    Setting("STREAM_SOURCE", "", "schwab, simulator or replay (STREAM_REPLAY); unset: schwab with credentials, the "
            "simulator only with the embedded database", choice(*SOURCES)),
    Setting("STREAM_RECORD", "", "tests and benchmarks: append every data payload ingest receives to this file, one "
            "JSON line each, for STREAM_REPLAY; it grows until the disk is full, so set it only while recording", path),
    Setting("STREAM_REPLAY", "", "with STREAM_SOURCE=replay: the recording (STREAM_RECORD's file) ingest reads once, "
            "as fast as the pipeline takes it, instead of logging in anywhere", path),
    Setting("DEPLOYMENT", "", "names this deployment's streams, offsets and journals, so several (one per Schwab "
            "login) can write into one database; unset: this host's name at the first start, kept in "
            "DATA_DIR/deployment from then on", deployment_name),
    Setting("MIGRATE_DATABASE_URL", "", "the owner's URL for make migrate, if not DATABASE_URL (keep it here only "
            "while migrating)", secret=True),
    Setting("SCHWAB_TOKEN_PATH", "", "schwab-py's token file; unset: DATA_DIR/schwab_token.json. The simulator "
            "keeps its own beside it, never this one (schwab_token.simulator.json for schwab_token.json)", path),
    Setting("SCHWAB_CALLBACK_URL", "https://127.0.0.1:8182", "your Schwab app's callback URL, exactly as registered",
            http_url),
    # Batching and metrics.
    Setting("BATCH_SIZE", "500", "rows per COPY at most", whole(1, 100_000)),
    Setting("STORE_QUOTES", "false", "store every top-of-book change in equity_quotes, journaled and exactly once; "
            "off by default: quotes are the largest stream (several rows per trade)", switch),
    Setting("BATCH_INTERVAL", "25ms", "longest a row waits for its batch, from when it was sent: tick-to-commit p99 "
            "under 50 ms at 1,000 updates/s; 50ms costs the writer a quarter less CPU and 25 ms more latency "
            "(a bare number is seconds, as in the seed)",
            duration(0, 3600, above=True)),
    Setting("STORAGE_BUDGET_MB", "500", "the database size (pg_database_size, as Supabase counts a plan) the service "
            "keeps under: past 95 % it archives and drops the oldest days down to 90 %; 0: no budget",
            whole(0, 10_000_000)),
    Setting("RETENTION_DAYS", "0", "also archive and drop market data older than this many days; 0: only the "
            "budget decides", whole(0, 36_500)),
    Setting("METRICS_RETENTION_DAYS", "3", "archive and drop streaming_metrics and stream_metrics older than this "
            "many days; 0: only the budget decides", whole(0, 36_500)),
    Setting("METRICS_INTERVAL", "1m", "how often streaming_metrics gets a row per actor (and stream_metrics one per "
            "stored stream): 1m costs the database about 2 MB a day, 10s six times that", duration(1, 3600)),
    Setting("STATS_INTERVAL", "1s", "how often each actor reports its counters to metrics (a fifth as often while "
            "nothing changes)", duration(0.1, 60)),
    Setting("METRICS_HTTP_HOST", "127.0.0.1", "where /metrics, /healthz and the status page are served: a loopback "
            "address unless ALLOW_PUBLIC_BIND=true, and then STATUS_PAGE_TOKEN is required"),
    Setting("METRICS_HTTP_PORT", "9108", "their port", PORT),
    Setting("STATUS_PAGE_TOKEN", "", "when set, the status page, its /api/* data and /metrics answer only a request "
            "carrying it (Authorization: Bearer <token>, or as basic auth's password with any user name); /healthz "
            "stays open. Required when METRICS_HTTP_HOST is not loopback: the page reads market data with the "
            "writer's login, which row-level security does not limit", credential, secret=True),
    Setting("ALLOW_PUBLIC_BIND", "false", "true: METRICS_HTTP_HOST, BUS_HOST and SIM_HOST may be addresses beyond "
            "loopback (0.0.0.0, a LAN address); otherwise such an address is refused at start. The bus has no "
            "credential at all: keep it on loopback or a private network", switch),
    # Options.
    Setting("OPTION_STRIKE_BAND", "0.02", "stream strikes within this fraction of the underlying (0.02: ±2 %)",
            number(0, 0.5, above=True)),
    Setting("OPTION_RECENTER_THRESHOLD", "", "re-centre the band when the underlying moves this fraction; unset: "
            "half the band", number(0, 0.5, above=True)),
    Setting("OPTION_CHAIN_REFRESH", "15m", "how often each ticker's option chain is read again", duration(1, 86400)),
    Setting("OPTION_REFRESH_INTERVAL", "5s", "how often the wanted contract set is sent to ingest",
            duration(0.1, 3600)),
    Setting("OPTION_STORE_INTERVAL", "1m", "store each option contract's latest quote once per this interval "
            "(option_prices.timestamp is the interval's start); 0: every quote, as Schwab sends them",
            store_interval),
    # The bus and the journal.
    Setting("BUS_TRANSPORT", "ipc", "ipc (sockets in STREAMING_VAR/run) or tcp (BUS_HOST from BUS_BASE_PORT)",
            choice("ipc", "tcp")),
    Setting("BUS_HOST", "127.0.0.1", "the address tcp binds: a loopback address unless ALLOW_PUBLIC_BIND=true"),
    Setting("BUS_BASE_PORT", "7100", "the first of five tcp ports", whole(1, 65535 - len(ACTORS) + 1)),
    Setting("BUS_HWM", "100000", "frames queued per socket before ZeroMQ drops (the consumer then replays the "
            "journal)", whole(1, 10_000_000)),
    Setting("HEARTBEAT_INTERVAL", "1s", "an idle publisher's heartbeat", duration(0.01, 60)),
    Setting("JOURNAL_FSYNC_INTERVAL", "1s", "longest a journaled frame waits for fsync (what a power cut can cost)",
            duration(0, 60)),
    Setting("JOURNAL_SEGMENT_BYTES", "67108864", "a journal segment rolls at this size", whole(4096, 1 << 31)),
    Setting("JOURNAL_SEGMENT_AGE", "1h", "or at this age", duration(1, 86400)),
    Setting("JOURNAL_RETENTION", "24h", "how long a fully consumed segment is kept", duration(0, 30 * 86400)),
    Setting("JOURNAL_MAX_BYTES", "2147483648", "each publisher's journal is kept under this: consumed segments go "
            "first, then the oldest unconsumed ones, each an ERROR and a journal error (README: the journal's cap)",
            whole(1 << 20, 1 << 40)),
    # Session hours and the Schwab connection.
    Setting("MARKET_HOURS", "", "exchange: logged in only during MARKET_SESSIONS; always: never log out; unset: "
            "exchange for Schwab, always for the simulator", choice("exchange", "always")),
    Setting("MARKET_SESSIONS", "regular", "any of pre,regular,post (Schwab's 07:00-09:30, 09:30-16:00, 16:00-20:00 "
            "New York)", parse_sessions),
    Setting("MARKET_LEAD", "5m", "log in this long before a session opens", duration(0, 12 * 3600)),
    Setting("MARKET_CLOCK", "", "tests only: a fake start time, optionally sped up (2026-11-25T15:59:00-05:00*3600)"),
    Setting("STREAM_WATCHDOG", "60s", "no frame and no heartbeat this long: reconnect", duration(1, 3600)),
    Setting("STREAM_COMMAND_TIMEOUT", "15s", "longest wait for Schwab's answer to a command", duration(1, 300)),
    Setting("STREAM_BACKOFF_MIN", "1s", "first reconnect delay (doubling, ±20 % jitter)", duration(0.1, 3600)),
    Setting("STREAM_BACKOFF_MAX", "2m", "longest reconnect delay", duration(0.1, 3600)),
    Setting("STREAM_LIMIT_BACKOFF", "5m", "least wait after code 12 (another streamer) or 19 (symbol limit)",
            duration(1, 3600)),
    Setting("STREAM_MAX_KEYS", "500", "Schwab's per-service symbol limit; more tickers are refused at start",
            whole(1, 10_000)),
    Setting("TOKEN_POLL_INTERVAL", "10s", "how often a waiting ingest looks for a new token file",
            duration(0.1, 3600)),
    # Where things are kept.
    Setting("STREAMING_VAR", "", "where data, logs and sockets live; unset: var/ in the checkout", path),
    Setting("DATA_DIR", "", "journals, offsets, dead letters, the token; unset: STREAMING_VAR/data", path),
    Setting("LOG_DIR", "", "one log file per actor; unset: STREAMING_VAR/log", path),
    Setting("RUN_DIR", "", "sockets and pid files; unset: STREAMING_VAR/run. Made 0700 when missing; one that exists "
            "is left as it is, with a warning if others can enter it", path),
    # The archive.
    Setting("ARCHIVE_DIR", "", "make archive's Parquet files (or, with ARCHIVE_S3_URL, their staging); unset: "
            "DATA_DIR/archive", path),
    Setting("ARCHIVE_S3_URL", "", "archive to this S3-compatible bucket, s3://bucket[/prefix]; unset: ARCHIVE_DIR "
            "only", s3_url),
    Setting("ARCHIVE_S3_ENDPOINT", "", "the bucket's S3 endpoint (Supabase Storage: https://<ref>.supabase.co/"
            "storage/v1/s3, Cloudflare R2, MinIO); unset: AWS", http_url),
    Setting("ARCHIVE_S3_REGION", "us-east-1", "the bucket's region"),
    Setting("ARCHIVE_S3_ACCESS_KEY_ID", "", "the bucket's access key id; set it with its secret; unset: boto3's own "
            "(AWS_* variables, ~/.aws)"),
    Setting("ARCHIVE_S3_SECRET_ACCESS_KEY", "", "the bucket's secret access key; set it with its id", secret=True),
    # The simulator.
    Setting("SIMULATOR_URL", "http://127.0.0.1:8765", "where the actors reach the simulator's HTTP side: http on "
            "a loopback address, or https", simulator_url),
    Setting("SIM_HOST", "127.0.0.1", "the simulator's listening address: a loopback address unless "
            "ALLOW_PUBLIC_BIND=true"),
    Setting("SIM_PORT", "8765", "the simulator's HTTP port", PORT),
    Setting("SIM_WS_PORT", "8766", "the simulator's streamer port", PORT),
    Setting("SIM_SEED", "42", "the simulated market's random seed", whole(-(2**63), 2**63 - 1)),
    Setting("SIM_RATE", "200", "simulated equity updates per second, across all symbols", number(0, 100_000, True)),
    Setting("SIM_HEARTBEAT", "5", "seconds of silence before the simulator sends a heartbeat",
            number(0, 3600, above=True)),
    Setting("SIM_BAR_SECONDS", "60", "length of a simulated CHART_EQUITY bar in seconds", number(0, 3600, True)),
    Setting("SIM_REPORT", "", "where the simulator writes what it sent (counts), on exit", path),
    Setting("SIM_TRADE_LOG", "", "tests: every trade the simulator sends, one JSON line each "
            "(common/simulator/trade_log.py); unset: counts only, no memory or disk per trade", path),
)
BY_NAME = {setting.name: setting for setting in SETTINGS}


def read(env: Mapping[str, str], name: str, default: str | None = None) -> Any:
    """The value of setting `name`: its text in `env`, else `default`, else its own default; None if none."""
    setting = BY_NAME[name]
    raw = env.get(name, "")
    if not raw.strip():
        raw = setting.default if default is None else default
    if not raw.strip():
        return None
    try:
        return setting.read(raw)
    except Rejected as problem:
        shown = "***" if setting.secret else repr(raw)
        raise ConfigError(f"{name}={shown} {problem}") from None


def embedded_database_url(var: Path) -> str:
    return f"postgresql://postgres@/streaming?host={quote(str(var / 'pg' / 'run'), safe='/')}"


def stream_source(env: Mapping[str, str], embedded_database: bool) -> str:
    """schwab or simulator, by the rules in the module docstring; a ConfigError names what is missing."""
    key, secret = (env.get(name, "").strip() for name in ("SCHWAB_APP_KEY", "SCHWAB_APP_SECRET"))
    if bool(key) != bool(secret):
        present, missing = ("SCHWAB_APP_KEY", "SCHWAB_APP_SECRET") if key else ("SCHWAB_APP_SECRET", "SCHWAB_APP_KEY")
        raise ConfigError(f"{present} is set but {missing} is not: Schwab needs both (a typo in the name?)")
    chosen = read(env, "STREAM_SOURCE")
    if chosen == "schwab" and not key:
        raise ConfigError("STREAM_SOURCE=schwab but SCHWAB_APP_KEY and SCHWAB_APP_SECRET are not set")
    if chosen != "replay" and env.get("STREAM_REPLAY", "").strip():
        raise ConfigError("STREAM_REPLAY is set but STREAM_SOURCE is not replay: set STREAM_SOURCE=replay to replay "
                          "it, or remove STREAM_REPLAY")
    if chosen:
        return chosen
    if key:
        return "schwab"
    if embedded_database:
        return "simulator"
    raise ConfigError(
        "DATABASE_URL is set but SCHWAB_APP_KEY and SCHWAB_APP_SECRET are not: set both to stream from Schwab, "
        "or STREAM_SOURCE=simulator to stream SIMULATED prices into that database on purpose")


def recordings(env: Mapping[str, str], source: str) -> tuple[Path | None, Path | None]:
    """(STREAM_RECORD, STREAM_REPLAY), each checked usable now: a replay that cannot start is refused here."""
    record, replay = read(env, "STREAM_RECORD"), read(env, "STREAM_REPLAY")
    if source == "replay":
        if replay is None:
            raise ConfigError("STREAM_SOURCE=replay but STREAM_REPLAY is not set: name the recording to replay "
                              "(a file STREAM_RECORD wrote)")
        if record is not None:
            raise ConfigError("STREAM_RECORD is set with STREAM_SOURCE=replay: a replay records nothing; "
                              "remove STREAM_RECORD")
        if problem := readable(replay):
            raise ConfigError(f"STREAM_REPLAY={str(replay)!r} {problem}; accepted: a recording STREAM_RECORD wrote")
    if record is not None and (problem := recordable(record)):
        raise ConfigError(f"STREAM_RECORD={str(record)!r} {problem}; accepted: a file path in a writable directory")
    return record, replay


def status_page_token(env: Mapping[str, str]) -> str | None:
    """STATUS_PAGE_TOKEN, once every listening address is checked. An address beyond loopback is taken only when
    meant (ALLOW_PUBLIC_BIND=true): a container's 0.0.0.0 published with `docker run -p` passes any host firewall.
    The status page served beyond loopback needs the token: it reads market data with the writer's login."""
    allowed = read(env, "ALLOW_PUBLIC_BIND")
    for name in BIND_SETTINGS:
        host = read(env, name)
        if not allowed and not loopback(host):
            raise ConfigError(f"{name}={host!r} is not a loopback address, so it would listen beyond this host: set "
                              f"ALLOW_PUBLIC_BIND=true if that is meant, or {name}=127.0.0.1")
    token, host = read(env, "STATUS_PAGE_TOKEN"), read(env, "METRICS_HTTP_HOST")
    if token is None and not loopback(host):
        raise ConfigError(f"METRICS_HTTP_HOST={host!r} serves the status page's market data beyond this host: set "
                          "STATUS_PAGE_TOKEN (16 or more characters, e.g. the output of openssl rand -hex 16), which "
                          "the page, /api/* and /metrics then ask for")
    return token


@dataclass(frozen=True)
class Config:
    deployment: str
    tickers: tuple[str, ...]
    database_url: str
    embedded_database: bool
    stream_source: str
    run_dir: Path
    log_dir: Path
    data_dir: Path
    bus_transport: str
    bus_host: str
    bus_base_port: int
    bus_hwm: int
    heartbeat_interval: float
    batch_size: int
    store_quotes: bool
    batch_interval: float
    metrics_interval: float
    stats_interval: float
    schwab_app_key: str
    schwab_app_secret: str
    #: The token file schwab-py reads and writes in this mode: SCHWAB_TOKEN_PATH's for Schwab, the simulator's
    #: own beside it (`simulator_token_path`) for the simulator.
    schwab_token_path: Path
    schwab_callback_url: str
    simulator_url: str
    option_strike_band: float
    option_refresh_interval: float
    journal_fsync_interval: float
    journal_segment_bytes: int
    journal_segment_age: float
    journal_retention: float
    journal_max_bytes: int
    option_recenter_threshold: float
    option_chain_refresh: float
    #: Seconds between stored option snapshots (OPTION_STORE_INTERVAL); 0: every quote is stored.
    option_store_interval: float
    #: STORAGE_BUDGET_MB (0: none), RETENTION_DAYS and METRICS_RETENTION_DAYS (0: by the budget alone).
    storage_budget_mb: int
    retention_days: int
    metrics_retention_days: int
    market_hours: str
    market_sessions: tuple[str, ...]
    #: The length of a CHART_EQUITY bar: a minute from Schwab, SIM_BAR_SECONDS from the simulator.
    bar_ms: int
    market_lead: float
    market_clock: str
    stream_watchdog: float
    stream_command_timeout: float
    stream_backoff_min: float
    stream_backoff_max: float
    stream_limit_backoff: float
    stream_max_keys: int
    token_poll_interval: float
    metrics_http_host: str
    metrics_http_port: int
    #: STATUS_PAGE_TOKEN: what the status page, /api/* and /metrics ask for; None: they answer anyone (loopback only).
    status_page_token: str | None = field(default=None, repr=False)
    stream_record: Path | None = None
    stream_replay: Path | None = None
    #: The archive (common/store/archive.py): its directory, and the S3-compatible bucket if one is set.
    archive_dir: Path = Path("var/data/archive")
    archive_s3_url: str | None = None
    archive_s3_endpoint: str | None = None
    archive_s3_region: str = "us-east-1"
    archive_s3_access_key_id: str | None = None
    archive_s3_secret_access_key: str | None = None

    @property
    def uses_simulator(self) -> bool:
        """The simulator stands in for Schwab: its data is SIMULATED wherever it shows."""
        return self.stream_source == "simulator"

    @property
    def replays(self) -> bool:
        """A recording stands in for Schwab: nothing logs in anywhere (common/feed/replay.py)."""
        return self.stream_source == "replay"

    def endpoint(self, actor: str) -> str:
        """Where `actor` binds its publisher; every subscriber connects here."""
        if self.bus_transport == "ipc":
            return f"ipc://{self.run_dir}/{actor}.pub"
        return f"tcp://{self.bus_host}:{self.bus_base_port + ACTORS.index(actor)}"

    def journal_dir(self, publisher: str) -> Path:
        """Where `publisher` journals every frame it sends (see common/transport/journal.py)."""
        return self.data_dir / "journal" / publisher

    @property
    def offsets_dir(self) -> Path:
        """Where consumers leave what they have passed, for journal pruning."""
        return self.data_dir / "offsets"

    def offsets_file(self, consumer: str) -> Path:
        return self.offsets_dir / f"{consumer}.json"

    @property
    def opted_in(self) -> frozenset[str]:
        """The settings that turned on a stream stored only when asked (`common/streams.py`)."""
        return frozenset({"STORE_QUOTES"} if self.store_quotes else ())

    @property
    def sampling(self) -> dict[str, float]:
        """Each setting that samples a stored stream into snapshots, and its interval in seconds (0: every
        record; `common/streams.py`)."""
        return {"OPTION_STORE_INTERVAL": self.option_store_interval}

    def ensure_dirs(self) -> None:
        """Create the log and data directories, and the run directory private (0700): bus sockets live there. A run
        directory that exists is left as it is (`private_directory`)."""
        for directory in (self.log_dir, self.data_dir):
            directory.mkdir(parents=True, exist_ok=True)
        private_directory(self.run_dir)


def load(env: Mapping[str, str] | None = None) -> Config:
    """Every setting read and checked; the first bad one raises a ConfigError naming it."""
    env = dict(os.environ if env is None else env)
    if not env.get("STREAM_TICKERS", "").strip() and env.get("STREAM_TICKER", "").strip():
        env["STREAM_TICKERS"] = env["STREAM_TICKER"]
    for setting in SETTINGS:  # the simulator's too: a bad one stops `make run`, not just the simulator
        read(env, setting.name)
    var = (read(env, "STREAMING_VAR") or Path.cwd() / "var").resolve()
    data_dir = read(env, "DATA_DIR") or var / "data"
    database_url = read(env, "DATABASE_URL")
    if not database_url and any(env.get(name, "").strip() for name in ("SUPABASE_URL", "SUPABASE_SERVICE_ROLE_KEY")):
        raise ConfigError("SUPABASE_URL is the seed's setting and is not used: set DATABASE_URL to your project's "
                          "session pooler URL (README, 'A Supabase database'), or remove SUPABASE_URL and "
                          "SUPABASE_SERVICE_ROLE_KEY to use the embedded database")
    source = stream_source(env, embedded_database=not database_url)
    record, replay = recordings(env, source)
    tickers = read(env, "STREAM_TICKERS")
    max_keys = read(env, "STREAM_MAX_KEYS")
    if len(tickers) > max_keys:
        raise ConfigError(f"STREAM_TICKERS names {len(tickers)} symbols but Schwab streams at most {max_keys} keys "
                          f"per service: remove {len(tickers) - max_keys}")
    band = read(env, "OPTION_STRIKE_BAND")
    backoff_min, backoff_max = read(env, "STREAM_BACKOFF_MIN"), read(env, "STREAM_BACKOFF_MAX")
    if backoff_max < backoff_min:
        raise ConfigError(f"STREAM_BACKOFF_MAX={env.get('STREAM_BACKOFF_MAX', '')!r} is below STREAM_BACKOFF_MIN "
                          f"({backoff_min:g} s); accepted: a duration at least STREAM_BACKOFF_MIN")
    segment_bytes, journal_max_bytes = read(env, "JOURNAL_SEGMENT_BYTES"), read(env, "JOURNAL_MAX_BYTES")
    if journal_max_bytes < 2 * segment_bytes:
        raise ConfigError(f"JOURNAL_MAX_BYTES={journal_max_bytes} is below twice JOURNAL_SEGMENT_BYTES "
                          f"({segment_bytes}): the segment being written is never deleted, so the cap could not hold; "
                          "accepted: at least twice JOURNAL_SEGMENT_BYTES")
    kept = kept_deployment(data_dir)  # checked even when DEPLOYMENT is set: a damaged file is never passed over
    token_path = read(env, "SCHWAB_TOKEN_PATH") or data_dir / "schwab_token.json"
    return Config(
        deployment=read(env, "DEPLOYMENT") or kept or host_deployment(),
        tickers=tickers,
        database_url=database_url or embedded_database_url(var),
        embedded_database=not database_url,
        stream_source=source,
        run_dir=read(env, "RUN_DIR") or var / "run",
        log_dir=read(env, "LOG_DIR") or var / "log",
        data_dir=data_dir,
        bus_transport=read(env, "BUS_TRANSPORT"),
        bus_host=read(env, "BUS_HOST"),
        bus_base_port=read(env, "BUS_BASE_PORT"),
        bus_hwm=read(env, "BUS_HWM"),
        heartbeat_interval=read(env, "HEARTBEAT_INTERVAL"),
        batch_size=read(env, "BATCH_SIZE"),
        store_quotes=read(env, "STORE_QUOTES"),
        batch_interval=read(env, "BATCH_INTERVAL"),
        metrics_interval=read(env, "METRICS_INTERVAL"),
        stats_interval=read(env, "STATS_INTERVAL"),
        schwab_app_key=env.get("SCHWAB_APP_KEY", "").strip(),
        schwab_app_secret=env.get("SCHWAB_APP_SECRET", "").strip(),
        schwab_token_path=token_path if source != "simulator" else simulator_token_path(token_path),
        schwab_callback_url=read(env, "SCHWAB_CALLBACK_URL"),
        simulator_url=read(env, "SIMULATOR_URL"),
        option_strike_band=band,
        option_refresh_interval=read(env, "OPTION_REFRESH_INTERVAL"),
        journal_fsync_interval=read(env, "JOURNAL_FSYNC_INTERVAL"),
        journal_segment_bytes=segment_bytes,
        journal_segment_age=read(env, "JOURNAL_SEGMENT_AGE"),
        journal_retention=read(env, "JOURNAL_RETENTION"),
        journal_max_bytes=journal_max_bytes,
        option_recenter_threshold=read(env, "OPTION_RECENTER_THRESHOLD", default=repr(band / 2)),
        option_chain_refresh=read(env, "OPTION_CHAIN_REFRESH"),
        option_store_interval=read(env, "OPTION_STORE_INTERVAL"),
        storage_budget_mb=read(env, "STORAGE_BUDGET_MB"),
        retention_days=read(env, "RETENTION_DAYS"),
        metrics_retention_days=read(env, "METRICS_RETENTION_DAYS"),
        # The simulator's market never closes unless asked, so `make run` streams at any hour.
        market_hours=read(env, "MARKET_HOURS", default="always" if source == "simulator" else "exchange"),
        market_sessions=read(env, "MARKET_SESSIONS"),
        bar_ms=round(read(env, "SIM_BAR_SECONDS") * 1000) if source == "simulator" else 60_000,
        market_lead=read(env, "MARKET_LEAD"),
        market_clock=read(env, "MARKET_CLOCK") or "",
        stream_watchdog=read(env, "STREAM_WATCHDOG"),
        stream_command_timeout=read(env, "STREAM_COMMAND_TIMEOUT"),
        stream_backoff_min=backoff_min,
        stream_backoff_max=backoff_max,
        stream_limit_backoff=read(env, "STREAM_LIMIT_BACKOFF"),
        stream_max_keys=max_keys,
        token_poll_interval=read(env, "TOKEN_POLL_INTERVAL"),
        metrics_http_host=read(env, "METRICS_HTTP_HOST"),
        metrics_http_port=read(env, "METRICS_HTTP_PORT"),
        status_page_token=status_page_token(env),
        stream_record=record,
        stream_replay=replay,
        **archive_settings(env, data_dir),
    )
