import pytest

from common.config import ConfigError, load, parse_duration


def test_stream_tickers_is_a_list_and_the_seed_single_ticker_still_works():
    assert load({"STREAM_TICKERS": "spy, qqq,SPY"}).tickers == ("SPY", "QQQ")
    assert load({"STREAM_TICKER": "QQQ"}).tickers == ("QQQ",)
    assert load({"STREAM_TICKERS": "AAPL", "STREAM_TICKER": "QQQ"}).tickers == ("AAPL",)


def test_bad_symbol_is_named():
    with pytest.raises(ConfigError, match="STREAM_TICKERS has symbols Schwab cannot stream: SP Y"):
        load({"STREAM_TICKERS": "SPY,SP Y"})


@pytest.mark.parametrize("raw, seconds", [("60", 60.0), ("0.05", 0.05), ("50ms", 0.05), ("2s", 2.0), ("1m", 60.0)])
def test_batch_interval_keeps_the_seed_unit(raw, seconds):
    assert parse_duration("BATCH_INTERVAL", raw) == pytest.approx(seconds)


def test_batch_defaults_are_low_latency():
    config = load({})
    assert config.batch_interval <= 0.1 and config.batch_size >= 1


@pytest.mark.parametrize("env, message", [
    ({"BATCH_INTERVAL": "soon"}, "BATCH_INTERVAL='soon' is not a duration"),
    ({"BATCH_SIZE": "0"}, "BATCH_SIZE=0 is below its minimum of 1"),
    ({"BATCH_SIZE": "ten"}, "BATCH_SIZE='ten' is not a whole number"),
    ({"BUS_TRANSPORT": "udp"}, "BUS_TRANSPORT='udp' must be ipc or tcp"),
])
def test_bad_values_name_the_variable(env, message):
    with pytest.raises(ConfigError, match=message):
        load(env)


def test_simulator_is_used_without_credentials_and_tcp_binds_loopback():
    assert load({}).uses_simulator
    assert not load({"SCHWAB_APP_KEY": "k", "SCHWAB_APP_SECRET": "s"}).uses_simulator
    config = load({"BUS_TRANSPORT": "tcp"})
    assert config.endpoint("writer") == "tcp://127.0.0.1:7103"
    assert load({"STREAMING_VAR": "/srv/x"}).endpoint("ingest") == "ipc:///srv/x/run/ingest.pub"


def test_more_tickers_than_schwab_streams_are_refused_at_start_saying_by_how_many():
    tickers = ",".join(f"T{i}" for i in range(503))
    with pytest.raises(ConfigError, match="names 503 symbols but Schwab streams at most 500 keys per service: remove 3"):
        load({"STREAM_TICKERS": tickers})
    assert len(load({"STREAM_TICKERS": ",".join(f"T{i}" for i in range(500))}).tickers) == 500


@pytest.mark.parametrize("env, message", [
    ({"MARKET_SESSIONS": "regular,lunch"}, "MARKET_SESSIONS='regular,lunch': choose from pre, regular, post"),
    ({"MARKET_HOURS": "sometimes"}, "MARKET_HOURS='sometimes' must be exchange or always"),
    ({"STREAM_WATCHDOG": "a while"}, "STREAM_WATCHDOG='a while' is not a duration"),
])
def test_bad_connection_settings_name_the_variable(env, message):
    with pytest.raises(ConfigError, match=message):
        load(env)


def test_market_hours_follow_the_exchange_for_schwab_and_never_close_for_the_simulator():
    assert load({}).market_hours == "always"
    schwab = load({"SCHWAB_APP_KEY": "k", "SCHWAB_APP_SECRET": "s", "MARKET_SESSIONS": "post, pre"})
    assert schwab.market_hours == "exchange" and schwab.market_sessions == ("post", "pre")
