"""Configuration from the environment, read once per process.

Names are the seed's where it had one (`STREAM_TICKER`, `BATCH_SIZE`,
`BATCH_INTERVAL`, `SCHWAB_APP_KEY`, `SCHWAB_APP_SECRET`); a bad value fails
at start with a message naming the variable, never later.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path

ACTORS = ("ingest", "indicator", "options", "writer", "metrics")
MARKET_SESSIONS = ("pre", "regular", "post")

_SYMBOL = re.compile(r"^[A-Z][A-Z0-9./$-]{0,9}$")


class ConfigError(ValueError):
    """A setting that can never work; the message names the variable."""


def parse_duration(name: str, raw: str) -> float:
    """Seconds from '0.05', '50ms', '2s', '1m' or '24h'. A bare number is seconds, as in the seed."""
    match = re.fullmatch(r"\s*([0-9]*\.?[0-9]+)\s*(ms|s|m|h)?\s*", raw)
    if not match:
        raise ConfigError(f"{name}={raw!r} is not a duration (examples: 0.05, 50ms, 2s, 1m, 24h)")
    value = float(match.group(1))
    unit = match.group(2) or "s"
    return value * {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0}[unit]


def parse_tickers(raw: str) -> tuple[str, ...]:
    tickers = tuple(dict.fromkeys(t.strip().upper() for t in raw.split(",") if t.strip()))
    if not tickers:
        raise ConfigError("STREAM_TICKERS is empty: name at least one symbol, e.g. STREAM_TICKERS=SPY,QQQ")
    bad = [t for t in tickers if not _SYMBOL.match(t)]
    if bad:
        raise ConfigError(f"STREAM_TICKERS has symbols Schwab cannot stream: {', '.join(bad)}")
    return tickers


def _int(env: dict[str, str], name: str, default: int, minimum: int = 0) -> int:
    raw = env.get(name, "").strip()
    if not raw:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ConfigError(f"{name}={raw!r} is not a whole number") from None
    if value < minimum:
        raise ConfigError(f"{name}={value} is below its minimum of {minimum}")
    return value


def parse_sessions(raw: str) -> tuple[str, ...]:
    """MARKET_SESSIONS: which of Schwab's sessions to stream, e.g. 'regular' or 'pre,regular,post'."""
    sessions = tuple(dict.fromkeys(s.strip().lower() for s in raw.split(",") if s.strip()))
    bad = [s for s in sessions if s not in MARKET_SESSIONS]
    if not sessions or bad:
        raise ConfigError(f"MARKET_SESSIONS={raw!r}: choose from {', '.join(MARKET_SESSIONS)}")
    return sessions


def _duration(env: dict[str, str], name: str, default: str) -> float:
    return parse_duration(name, env.get(name, default))


def _float(env: dict[str, str], name: str, default: float) -> float:
    raw = env.get(name, "").strip()
    if not raw:
        return default
    try:
        return float(raw)
    except ValueError:
        raise ConfigError(f"{name}={raw!r} is not a number") from None


@dataclass(frozen=True)
class Config:
    tickers: tuple[str, ...]
    database_url: str
    run_dir: Path
    log_dir: Path
    data_dir: Path
    bus_transport: str
    bus_host: str
    bus_base_port: int
    bus_hwm: int
    heartbeat_interval: float
    batch_size: int
    batch_interval: float
    metrics_interval: float
    stats_interval: float
    schwab_app_key: str
    schwab_app_secret: str
    schwab_token_path: Path
    schwab_callback_url: str
    simulator_url: str
    option_strike_band: float
    option_refresh_interval: float
    journal_fsync_interval: float
    journal_segment_bytes: int
    journal_segment_age: float
    journal_retention: float
    option_recenter_threshold: float
    option_chain_refresh: float
    market_hours: str
    market_sessions: tuple[str, ...]
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

    @property
    def uses_simulator(self) -> bool:
        """No Schwab credentials means the embedded simulator stands in for Schwab."""
        return not (self.schwab_app_key and self.schwab_app_secret)

    def endpoint(self, actor: str) -> str:
        """Where `actor` binds its publisher; every subscriber connects here."""
        if self.bus_transport == "ipc":
            return f"ipc://{self.run_dir}/{actor}.pub"
        return f"tcp://{self.bus_host}:{self.bus_base_port + ACTORS.index(actor)}"

    def journal_dir(self, publisher: str) -> Path:
        """Where `publisher` journals every frame it sends (see common/journal.py)."""
        return self.data_dir / "journal" / publisher

    @property
    def offsets_dir(self) -> Path:
        """Where consumers leave what they have passed, for journal pruning."""
        return self.data_dir / "offsets"

    def offsets_file(self, consumer: str) -> Path:
        return self.offsets_dir / f"{consumer}.json"

    def ensure_dirs(self) -> None:
        """Create the run directory private (0700): bus sockets live there."""
        for path in (self.log_dir, self.data_dir):
            path.mkdir(parents=True, exist_ok=True)
        self.run_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        self.run_dir.chmod(0o700)


def load(env: dict[str, str] | None = None) -> Config:
    env = dict(os.environ if env is None else env)
    var = Path(env.get("STREAMING_VAR") or Path.cwd() / "var").resolve()
    tickers_raw = env.get("STREAM_TICKERS") or env.get("STREAM_TICKER") or "SPY"
    transport = env.get("BUS_TRANSPORT", "ipc").strip().lower()
    if transport not in ("ipc", "tcp"):
        raise ConfigError(f"BUS_TRANSPORT={transport!r} must be ipc or tcp")
    batch_interval = parse_duration("BATCH_INTERVAL", env.get("BATCH_INTERVAL", "50ms"))
    if batch_interval <= 0:
        raise ConfigError("BATCH_INTERVAL must be above zero")
    data_dir = Path(env.get("DATA_DIR") or var / "data")
    simulated = not (env.get("SCHWAB_APP_KEY") and env.get("SCHWAB_APP_SECRET"))
    # The simulator's market never closes unless asked, so `make run` streams at any hour.
    market_hours = env.get("MARKET_HOURS", "always" if simulated else "exchange").strip().lower()
    if market_hours not in ("exchange", "always"):
        raise ConfigError(f"MARKET_HOURS={market_hours!r} must be exchange or always")
    band = _float(env, "OPTION_STRIKE_BAND", 0.02)
    tickers = parse_tickers(tickers_raw)
    max_keys = _int(env, "STREAM_MAX_KEYS", 500, minimum=1)
    if len(tickers) > max_keys:
        raise ConfigError(f"STREAM_TICKERS names {len(tickers)} symbols but Schwab streams at most {max_keys} keys "
                          f"per service: remove {len(tickers) - max_keys}")
    return Config(
        tickers=tickers,
        database_url=env.get("DATABASE_URL", ""),
        run_dir=Path(env.get("RUN_DIR") or var / "run"),
        log_dir=Path(env.get("LOG_DIR") or var / "log"),
        data_dir=data_dir,
        bus_transport=transport,
        bus_host=env.get("BUS_HOST", "127.0.0.1"),
        bus_base_port=_int(env, "BUS_BASE_PORT", 7100, minimum=1024),
        bus_hwm=_int(env, "BUS_HWM", 100_000, minimum=1),
        heartbeat_interval=parse_duration("HEARTBEAT_INTERVAL", env.get("HEARTBEAT_INTERVAL", "1s")),
        batch_size=_int(env, "BATCH_SIZE", 500, minimum=1),
        batch_interval=batch_interval,
        metrics_interval=parse_duration("METRICS_INTERVAL", env.get("METRICS_INTERVAL", "10s")),
        stats_interval=parse_duration("STATS_INTERVAL", env.get("STATS_INTERVAL", "1s")),
        schwab_app_key=env.get("SCHWAB_APP_KEY", ""),
        schwab_app_secret=env.get("SCHWAB_APP_SECRET", ""),
        schwab_token_path=Path(env.get("SCHWAB_TOKEN_PATH") or data_dir / "schwab_token.json"),
        schwab_callback_url=env.get("SCHWAB_CALLBACK_URL", "https://127.0.0.1:8182"),
        simulator_url=env.get("SIMULATOR_URL", "http://127.0.0.1:8765"),
        option_strike_band=band,
        option_refresh_interval=parse_duration(
            "OPTION_REFRESH_INTERVAL", env.get("OPTION_REFRESH_INTERVAL", "5s")
        ),
        journal_fsync_interval=parse_duration("JOURNAL_FSYNC_INTERVAL", env.get("JOURNAL_FSYNC_INTERVAL", "1s")),
        journal_segment_bytes=_int(env, "JOURNAL_SEGMENT_BYTES", 64 << 20, minimum=4096),
        journal_segment_age=parse_duration("JOURNAL_SEGMENT_AGE", env.get("JOURNAL_SEGMENT_AGE", "1h")),
        journal_retention=parse_duration("JOURNAL_RETENTION", env.get("JOURNAL_RETENTION", "24h")),
        option_recenter_threshold=_float(env, "OPTION_RECENTER_THRESHOLD", band / 2),
        option_chain_refresh=_duration(env, "OPTION_CHAIN_REFRESH", "15m"),
        market_hours=market_hours,
        market_sessions=parse_sessions(env.get("MARKET_SESSIONS", "regular")),
        market_lead=_duration(env, "MARKET_LEAD", "5m"),
        market_clock=env.get("MARKET_CLOCK", "").strip(),
        stream_watchdog=_duration(env, "STREAM_WATCHDOG", "60s"),
        stream_command_timeout=_duration(env, "STREAM_COMMAND_TIMEOUT", "15s"),
        stream_backoff_min=_duration(env, "STREAM_BACKOFF_MIN", "1s"),
        stream_backoff_max=_duration(env, "STREAM_BACKOFF_MAX", "2m"),
        stream_limit_backoff=_duration(env, "STREAM_LIMIT_BACKOFF", "5m"),
        stream_max_keys=max_keys,
        token_poll_interval=_duration(env, "TOKEN_POLL_INTERVAL", "10s"),
        metrics_http_host=env.get("METRICS_HTTP_HOST", "127.0.0.1"),
        metrics_http_port=_int(env, "METRICS_HTTP_PORT", 9108, minimum=0),
    )
