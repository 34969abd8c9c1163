"""common/environment.py without processes: the .env grammar, what wins, what is derived, what is shown."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from common.config import SETTINGS, ConfigError
from common.environment import ROOT, Settings, example, read_env_file

DATA = Path(__file__).resolve().parents[1] / "data"


def env_file(tmp_path: Path, text: str) -> Path:
    path = tmp_path / ".env"
    path.write_text(text)
    return path


def test_the_grammar_reads_quotes_comments_export_spaces_dollars_and_crlf(tmp_path):
    path = env_file(tmp_path, (DATA / "grammar.env").read_text().replace("\n", "\r\n"))
    assert read_env_file(path) == json.loads((DATA / "grammar.json").read_text())


def test_a_line_that_is_not_key_value_is_an_error_naming_its_number_not_its_text(tmp_path):
    path = env_file(tmp_path, "STREAM_TICKERS=SPY\nmy password is hunter2\n")
    with pytest.raises(ConfigError, match=r"\.env: line 2 is not KEY=value") as refused:
        read_env_file(path)
    assert "hunter2" not in str(refused.value)


def test_a_missing_env_file_named_by_env_file_is_an_error(tmp_path):
    with pytest.raises(ConfigError, match="ENV_FILE='.*nothing' does not exist"):
        Settings({"ENV_FILE": str(tmp_path / "nothing")})


def test_the_environment_wins_over_the_file_unless_it_is_empty(tmp_path):
    path = env_file(tmp_path, "STREAM_TICKERS=SPY\nBATCH_SIZE=10\n")
    settings = Settings({"STREAM_TICKERS": "QQQ", "BATCH_SIZE": ""}, path)
    assert settings.values["STREAM_TICKERS"] == "QQQ" and settings.values["BATCH_SIZE"] == "10"
    assert settings.origin("STREAM_TICKERS") == "environment" and settings.origin("BATCH_SIZE") == ".env"
    assert settings.origin("BATCH_INTERVAL") == "default"


def test_what_supervisord_gets_is_derived_from_the_settings(tmp_path):
    embedded = Settings({"STREAMING_VAR": str(tmp_path / "v")}, env_file(tmp_path, "")).for_processes()
    assert embedded["EMBEDDED_PG"] == "true" and embedded["EMBEDDED_SIM"] == "true"
    assert embedded["STREAMING_VAR"] == str(tmp_path / "v") and embedded["STREAMING_PYTHON"] == sys.executable
    assert "DATABASE_URL" not in embedded, "the embedded database's URL is derived by every process alike"
    real = Settings({}, env_file(tmp_path, "DATABASE_URL=postgresql://u:p@db.example/postgres\n"
                                           "SCHWAB_APP_KEY=k\nSCHWAB_APP_SECRET=s\n")).for_processes()
    assert real["EMBEDDED_PG"] == "false" and real["EMBEDDED_SIM"] == "false"
    assert real["STREAMING_VAR"] == str(ROOT / "var")


def test_an_unchecked_environment_still_says_where_var_is(tmp_path):
    """make stop and make status must work while a setting is bad."""
    settings = Settings({}, env_file(tmp_path, "STREAM_BACKOFF_MIN=0\nSTREAMING_VAR=/srv/streaming\n"))
    with pytest.raises(ConfigError):
        settings.for_processes()
    assert settings.for_processes(checked=False)["STREAMING_VAR"] == "/srv/streaming"


def test_secrets_are_masked_where_settings_are_shown(tmp_path):
    settings = Settings({}, env_file(tmp_path, "SCHWAB_APP_KEY=app-key\nSCHWAB_APP_SECRET=app-secret-value\n"
                                               "DATABASE_URL='postgresql://u:pass%23word@db.example:5432/postgres'\n"))
    assert settings.shown("SCHWAB_APP_SECRET") == "***" and settings.shown("SCHWAB_APP_KEY") == "app-key"
    assert settings.shown("DATABASE_URL") == "postgresql://u:***@db.example:5432/postgres"


def test_env_example_is_every_setting_with_its_default_and_meaning():
    assert (ROOT / ".env.example").read_text() == example(), "regenerate: python -m common.environment example"
    for setting in SETTINGS:
        assert f"# {setting.meaning}\n" in example() and f"{setting.name}={setting.default}\n" in example()
