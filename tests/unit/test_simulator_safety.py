"""Nothing real reaches the simulator, and only this run's own tools drive it (issue 25 items 9 and 10).

Pure checks: where each mode keeps its token, which SIMULATOR_URL is accepted,
which tokens the simulator honours, and what a control request (`/sim/inject`,
`/sim/fault`) must carry. tests/integration/test_simulator_safety.py runs the
same through a simulator process and the real schwab-py client.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from common.config import ConfigError, load
from common.simulator import control
from common.simulator.tokens import NOT_ISSUED, REVOKED, Tokens


def test_the_simulator_keeps_its_token_in_its_own_file_never_schwabs(tmp_path: Path):
    chosen = tmp_path / "secrets" / "schwab_token.json"
    simulated = load({"STREAMING_VAR": str(tmp_path), "SCHWAB_TOKEN_PATH": str(chosen)})
    real = load({"STREAMING_VAR": str(tmp_path), "SCHWAB_TOKEN_PATH": str(chosen),
                 "SCHWAB_APP_KEY": "key", "SCHWAB_APP_SECRET": "secret"})
    assert simulated.uses_simulator and not real.uses_simulator
    assert real.schwab_token_path == chosen
    assert simulated.schwab_token_path == tmp_path / "secrets" / "schwab_token.simulator.json"
    by_default = load({"STREAMING_VAR": str(tmp_path)})
    assert by_default.schwab_token_path == tmp_path / "data" / "schwab_token.simulator.json"


@pytest.mark.parametrize("url", ["http://127.0.0.1:8765", "http://127.8.9.10:1", "http://localhost:8765",
                                 "http://[::1]:8765", "https://simulator.example.com", "https://10.0.0.5:8443"])
def test_the_simulator_is_reached_on_this_machine_or_over_https(tmp_path: Path, url: str):
    assert load({"STREAMING_VAR": str(tmp_path), "SIMULATOR_URL": url}).simulator_url == url


@pytest.mark.parametrize("url", ["http://10.0.0.5:8765", "http://simulator.example.com:8765", "http://0.0.0.0:8765",
                                 "http://localhost.example.com"])
def test_plain_http_to_another_host_is_refused_naming_the_value_and_what_is_accepted(tmp_path: Path, url: str):
    with pytest.raises(ConfigError) as refused:
        load({"STREAMING_VAR": str(tmp_path), "SIMULATOR_URL": url})
    message = str(refused.value)
    assert message.startswith(f"SIMULATOR_URL={url!r} ")
    assert "accepted: http:// to a loopback address" in message and "or https://" in message


def test_the_simulator_honours_only_tokens_it_issued():
    tokens = Tokens()
    issued = tokens.issue()
    assert tokens.access_ok(issued["access_token"]) and tokens.refresh_refusal(issued["refresh_token"]) is None
    # A real Schwab token sent here by mistake, a hand-written one, or none at all.
    for access, refresh in (("I0.b2F1dGgyLmNkYy5zY2h3YWIuY29t.real", "real-schwab-refresh-token"),
                            ("SIM.made-up", "SIM.refresh.made-up"), ("", "")):
        assert not tokens.access_ok(access)
        assert tokens.refresh_refusal(refresh) == NOT_ISSUED
    tokens.revoke_refresh()
    assert not tokens.access_ok(issued["access_token"])
    assert tokens.refresh_refusal(issued["refresh_token"]) == REVOKED, "revoked is not 'never issued'"


def refusal(expected: str, sent: str | None, content_type: str | None) -> control.Refused:
    with pytest.raises(control.Refused) as refused:
        control.check(expected, sent, content_type)
    assert "\n" not in refused.value.reason
    return refused.value


def test_a_control_request_needs_this_runs_token_and_a_json_content_type():
    token = control.new_token()
    assert len(token) >= 40 and control.new_token() != token
    missing = refusal(token, None, "application/json")
    assert missing.status == 401 and control.HEADER in missing.reason and control.FILE in missing.reason
    assert refusal(token, "", "application/json").status == 401
    wrong = refusal(token, token[:-1] + "x", "application/json")
    assert wrong.status == 403 and "not this run's token" in wrong.reason
    for simple in ("text/plain", "application/x-www-form-urlencoded", "multipart/form-data; boundary=x", None):
        assert refusal(token, token, simple).status == 415, simple
    control.check(token, token, "application/json")
    control.check(token, token, "Application/JSON; charset=utf-8")


def test_a_body_over_a_mebibyte_is_refused_before_it_is_read():
    assert control.MAX_BODY == 1024 * 1024
    assert control.body_length(None) == 0 and control.body_length("12") == 12
    assert control.body_length(str(control.MAX_BODY)) == control.MAX_BODY
    with pytest.raises(control.Refused) as too_big:
        control.body_length(str(control.MAX_BODY + 1))
    assert too_big.value.status == 413 and str(control.MAX_BODY) in too_big.value.reason
    for bad in ("-1", "ten", "1e3"):
        with pytest.raises(control.Refused) as unreadable:
            control.body_length(bad)
        assert unreadable.value.status == 400


def test_the_control_token_is_written_private_in_the_run_directory(tmp_path: Path):
    created = tmp_path / "run"
    written = control.write_token(created, "first")
    assert written == created / control.FILE and control.read_token(created) == "first"
    assert written.stat().st_mode & 0o777 == 0o600 and created.stat().st_mode & 0o777 == 0o700
    control.write_token(created, "second")
    assert control.headers(created) == {control.HEADER: "second", "Content-Type": "application/json"}

    shared = tmp_path / "shared"
    shared.mkdir(mode=0o755)
    shared.chmod(0o755)
    control.write_token(shared, "third")
    assert shared.stat().st_mode & 0o777 == 0o755, "a directory the simulator did not create keeps its mode"
