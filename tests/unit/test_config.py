"""Settings: every value checked before anything starts, each error naming the variable, its value and the range.

The table runs the very check `make run` runs first (`python -m common.environment
check`, which is `Settings.config()`), on a settings file of one line.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from common.config import SETTINGS, ConfigError, load, parse_duration, path, text
from common.environment import Settings

BAD = [
    # (the .env line, what the message must say besides the variable's name)
    ("STREAM_BACKOFF_MIN=0", "'0' is out of range; accepted: a duration from 100ms"),
    ("ALLOW_PUBLIC_BIND=maybe", "accepted: true or false"),
    ("STATUS_PAGE_TOKEN=short", "16 to 200 of"),
    ("STREAM_BACKOFF_MAX=50ms", "'50ms' is out of range"),
    ("STREAM_BACKOFF_MAX=2s\nSTREAM_BACKOFF_MIN=5s", "is below STREAM_BACKOFF_MIN"),
    ("JOURNAL_MAX_BYTES=1000", "'1000' is out of range"),
    ("JOURNAL_MAX_BYTES=lots", "JOURNAL_MAX_BYTES"),
    ("JOURNAL_MAX_BYTES=100000000\nJOURNAL_SEGMENT_BYTES=67108864", "is below twice JOURNAL_SEGMENT_BYTES"),
    ("STREAM_WATCHDOG=0", "'0' is out of range; accepted: a duration from 1s up to 1h"),
    ("STREAM_WATCHDOG=a while", "'a while' is not a duration"),
    ("STREAM_COMMAND_TIMEOUT=0s", "out of range"),
    ("STREAM_LIMIT_BACKOFF=-5m", "is not a duration"),
    ("STREAM_MAX_KEYS=0", "a whole number from 1 to 10000"),
    ("METRICS_INTERVAL=0", "'0' is out of range; accepted: a duration from 1s"),
    ("STATS_INTERVAL=0", "out of range"),
    ("HEARTBEAT_INTERVAL=0", "out of range"),
    ("TOKEN_POLL_INTERVAL=1ms", "out of range"),
    ("BATCH_SIZE=0", "'0' is out of range; accepted: a whole number from 1 to 100000"),
    ("BATCH_SIZE=ten", "'ten' is not a whole number"),
    ("BATCH_INTERVAL=0", "'0' is out of range; accepted: a duration above 0s"),
    ("BATCH_INTERVAL=soon", "'soon' is not a duration"),
    ("METRICS_HTTP_PORT=0", "a whole number from 1 to 65535"),
    ("METRICS_HTTP_PORT=70000", "a whole number from 1 to 65535"),
    ("SIM_PORT=99999", "a whole number from 1 to 65535"),
    ("SIM_WS_PORT=-1", "a whole number from 1 to 65535"),
    ("BUS_BASE_PORT=65535", "a whole number from 1 to 65531"),
    ("BUS_HWM=0", "a whole number from 1"),
    ("BUS_TRANSPORT=udp", "'udp' is not one of ipc, tcp"),
    ("OPTION_STRIKE_BAND=nan", "accepted: a number above 0 and at most 0.5"),
    ("OPTION_STRIKE_BAND=inf", "accepted: a number above 0"),
    ("OPTION_STRIKE_BAND=0", "accepted: a number above 0"),
    ("OPTION_STRIKE_BAND=2%", "is not a number"),
    ("OPTION_RECENTER_THRESHOLD=-0.01", "accepted: a number above 0"),
    ("OPTION_CHAIN_REFRESH=0", "out of range"),
    ("OPTION_REFRESH_INTERVAL=0", "out of range"),
    ("JOURNAL_SEGMENT_BYTES=10", "a whole number from 4096"),
    ("JOURNAL_SEGMENT_AGE=0", "out of range"),
    ("JOURNAL_FSYNC_INTERVAL=2m", "out of range"),
    ("JOURNAL_RETENTION=forever", "is not a duration"),
    ("MARKET_HOURS=sometimes", "'sometimes' is not one of exchange, always"),
    ("MARKET_SESSIONS=regular,lunch", "choose from pre, regular, post"),
    ("MARKET_LEAD=1d", "out of range"),
    ("STREAM_SOURCE=tape", "'tape' is not one of schwab, simulator, replay"),
    ("STREAM_TICKERS='\"SPY,QQQ\"'", "Schwab cannot stream: \"SPY, QQQ\""),  # quotes kept, as docker --env-file does
    ("STREAM_TICKERS=SPY,SP Y", "Schwab cannot stream: SP Y"),
    ("STREAM_TICKERS=,", "is empty"),
    ("STREAM_TICKERS=SPY,$", "Schwab cannot stream: $ "),
    ("STREAM_TICKERS=$$SPX", "Schwab cannot stream: $$SPX"),
    ("STREAM_TICKERS=/ESZ2026", "Schwab cannot stream: /ESZ2026"),
    ("SCHWAB_CALLBACK_URL=127.0.0.1:8182", "is not an http(s) URL"),
    ("SIMULATOR_URL=http://127.0.0.1:99999", "port outside 1-65535"),
    ("SIM_RATE=0", "accepted: a number above 0"),
    ("SIM_RATE=nan", "accepted: a number above 0"),
    ("SIM_HEARTBEAT=0", "accepted: a number above 0"),
    ("SIM_BAR_SECONDS=-1", "accepted: a number above 0"),
    ("STORE_QUOTES=sometimes", "accepted: true or false"),
    ("OPTION_STORE_INTERVAL=7s", "a duration from 1s to 1h that divides an hour"),
    ("OPTION_STORE_INTERVAL=2h", "a duration from 1s to 1h that divides an hour"),
    ("OPTION_STORE_INTERVAL=500ms", "a duration from 1s to 1h that divides an hour"),
    ("OPTION_STORE_INTERVAL=soon", "is not a duration"),
    ("STORAGE_BUDGET_MB=-1", "is out of range"),
    ("ARCHIVE_S3_URL=https://bucket.example/prefix", "is not an S3 URL"),
    ("ARCHIVE_S3_URL=s3://Not_A_Bucket", "is not an S3 URL"),
    ("ARCHIVE_S3_ENDPOINT=ftp://storage.example", "is not an http(s) URL"),
    ("ARCHIVE_S3_ACCESS_KEY_ID=key", "ARCHIVE_S3_ACCESS_KEY_ID is set but ARCHIVE_S3_SECRET_ACCESS_KEY is not"),
    ("RETENTION_DAYS=1.5", "is not a whole number"),
    ("METRICS_RETENTION_DAYS=-7", "is out of range"),
    ("SIM_SEED=4.2", "is not a whole number"),
    ("DEPLOYMENT=Desk/One", "is not a deployment name"),
    ("DEPLOYMENT=-desk", "is not a deployment name"),
    ("BUS_HOST=127.0\x07.0.1", "holds a control character"),
    # Where data comes from and goes.
    ("SCHWAB_APP_KEY=key", "SCHWAB_APP_KEY is set but SCHWAB_APP_SECRET is not"),
    ("SCHWAB_APP_SECRET=secret", "SCHWAB_APP_SECRET is set but SCHWAB_APP_KEY is not"),
    ("DATABASE_URL=postgresql://u:p@db.example/postgres", "SCHWAB_APP_KEY and SCHWAB_APP_SECRET are not"),
    ("DATABASE_URL=postgresql://u:p@db.example/postgres\nSCHWAB_APP_KEY=key", "SCHWAB_APP_SECRET is not"),
    ("STREAM_SOURCE=schwab", "SCHWAB_APP_KEY and SCHWAB_APP_SECRET are not set"),
    ("STREAM_SOURCE=replay", "STREAM_REPLAY is not set"),
    ("STREAM_SOURCE=replay\nSTREAM_REPLAY=/nonexistent/recording.jsonl", "cannot be read (No such file or directory)"),
    ("STREAM_SOURCE=replay\nSTREAM_REPLAY=/tmp", "STREAM_REPLAY='/tmp' is a directory"),
    ("STREAM_SOURCE=replay\nSTREAM_REPLAY=/dev/null\nSTREAM_RECORD=/tmp/again.jsonl", "a replay records nothing"),
    ("STREAM_REPLAY=/dev/null", "STREAM_REPLAY is set but STREAM_SOURCE is not replay"),
    ("STREAM_RECORD=/nonexistent/recording.jsonl", "is in /nonexistent, which is not a directory"),
    ("SUPABASE_URL=https://abc.supabase.co", "set DATABASE_URL"),
    ("STREAM_SOURCE=simulator\nDATABASE_URL=postgresql://u:p%zz@db.example/postgres",
     "DATABASE_URL='postgresql://u:***@db.example/postgres' is not a URL libpq can read"),
]


def check(tmp_path: Path, lines: str, environ: dict[str, str] | None = None):
    env_file = tmp_path / ".env"
    env_file.write_text(lines + "\n")
    return Settings({"STREAMING_VAR": str(tmp_path / "var"), **(environ or {})}, env_file).config()


@pytest.mark.parametrize("line, says", BAD, ids=[line.split("=")[0] + "=" + line.split("=", 1)[1][:12] for line, _ in BAD])
def test_a_bad_setting_is_refused_naming_it_its_value_and_what_is_accepted(tmp_path, line, says):
    with pytest.raises(ConfigError) as refused:
        check(tmp_path, line)
    message = str(refused.value)
    assert says in message
    assert any(name in message for name in (entry.split("=")[0] for entry in line.splitlines())), message


def test_every_setting_with_a_range_has_a_bad_value_in_the_table():
    checked = {line.split("=")[0] for line, _ in BAD}
    free_text = {setting.name for setting in SETTINGS if setting.read in (text, path)}
    assert {setting.name for setting in SETTINGS} - free_text - checked == set()


def test_the_database_password_is_masked_in_the_error(tmp_path):
    with pytest.raises(ConfigError) as refused:
        check(tmp_path, "STREAM_SOURCE=simulator\nDATABASE_URL=postgresql://u:s3cr%zzt@db.example/postgres")
    assert "s3cr" not in str(refused.value) and "***" in str(refused.value)


def test_defaults_are_a_simulator_on_the_embedded_database(tmp_path):
    config = check(tmp_path, "")
    assert config.uses_simulator and config.embedded_database and config.market_hours == "always"
    assert config.database_url == f"postgresql://postgres@/streaming?host={tmp_path}/var/pg/run"
    assert config.batch_interval <= 0.1 and config.batch_size >= 1


@pytest.mark.parametrize("lines, source", [
    ("SCHWAB_APP_KEY=k\nSCHWAB_APP_SECRET=s", "schwab"),
    ("SCHWAB_APP_KEY=k\nSCHWAB_APP_SECRET=s\nDATABASE_URL=postgresql://u:p@db.example/postgres", "schwab"),
    ("STREAM_SOURCE=simulator\nDATABASE_URL=postgresql://u:p@db.example/postgres", "simulator"),
    ("STREAM_SOURCE=simulator\nSCHWAB_APP_KEY=k\nSCHWAB_APP_SECRET=s", "simulator"),
    ("STREAM_SOURCE=replay\nSTREAM_REPLAY=/dev/null\nDATABASE_URL=postgresql://u:p@db.example/postgres", "replay"),
])
def test_the_source_is_schwab_with_credentials_and_the_simulator_only_when_safe_or_asked(tmp_path, lines, source):
    assert check(tmp_path, lines).stream_source == source


def test_stream_tickers_is_a_list_and_the_seed_single_ticker_still_works():
    assert load({"STREAM_TICKERS": "spy, qqq,SPY"}).tickers == ("SPY", "QQQ")
    assert load({"STREAM_TICKERS": "SPY,$spx,$VIX"}).tickers == ("SPY", "$SPX", "$VIX"), "indexes are Schwab's $"
    assert load({"STREAM_TICKERS": "/es,/ESZ26,/MES"}).tickers == ("/ES", "/ESZ26", "/MES"), "futures are Schwab's /"
    assert load({"STREAM_TICKER": "QQQ"}).tickers == ("QQQ",)
    assert load({"STREAM_TICKERS": "AAPL", "STREAM_TICKER": "QQQ"}).tickers == ("AAPL",)


@pytest.mark.parametrize("raw, seconds", [("60", 60.0), ("0.05", 0.05), ("50ms", 0.05), ("2s", 2.0), ("1m", 60.0)])
def test_batch_interval_keeps_the_seed_unit(raw, seconds):
    assert parse_duration("BATCH_INTERVAL", raw) == pytest.approx(seconds)


def test_tcp_binds_loopback_and_ipc_lives_in_the_run_dir():
    assert load({"BUS_TRANSPORT": "tcp"}).endpoint("writer") == "tcp://127.0.0.1:7103"
    assert load({"STREAMING_VAR": "/srv/x"}).endpoint("ingest") == "ipc:///srv/x/run/ingest.pub"


def test_more_tickers_than_schwab_streams_are_refused_at_start_saying_by_how_many():
    tickers = ",".join(f"T{i}" for i in range(503))
    with pytest.raises(ConfigError, match="names 503 symbols but Schwab streams at most 500 keys per service: remove 3"):
        load({"STREAM_TICKERS": tickers})
    assert len(load({"STREAM_TICKERS": ",".join(f"T{i}" for i in range(500))}).tickers) == 500


def test_market_hours_follow_the_exchange_for_schwab_and_never_close_for_the_simulator():
    assert load({}).market_hours == "always"
    schwab = load({"SCHWAB_APP_KEY": "k", "SCHWAB_APP_SECRET": "s", "MARKET_SESSIONS": "post, pre"})
    assert schwab.market_hours == "exchange" and schwab.market_sessions == ("post", "pre")


@pytest.mark.parametrize("raw, seconds", [("0", 0.0), ("1s", 1.0), ("1m", 60.0), ("15m", 900.0), ("1h", 3600.0)])
def test_option_snapshots_come_every_interval_that_divides_an_hour_or_every_quote(tmp_path, raw, seconds):
    assert check(tmp_path, f"OPTION_STORE_INTERVAL={raw}").option_store_interval == seconds
