"""Nothing real reaches the simulator, and only this run's own tools drive it: a simulator process, the real
schwab-py client (issue 25 items 9 and 10; the pure checks are in tests/unit/test_simulator_safety.py)."""

from __future__ import annotations

import http.client
import json
import time
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import pytest
from authlib.integrations.base_client import OAuthError

from common import config as config_module
from common.feed.schwab_client import force_refresh, make_client
from common.simulator import control
from common.simulator.tokens import NOT_ISSUED, REVOKED
from tests.helpers.simulator_process import control_headers, run_dir, simulator

#: What each control endpoint is given when it is allowed: harmless with nobody logged in.
CONTROL = {"/sim/inject": '{"data": []}', "/sim/fault": '{"fault": "close"}'}


def test_the_control_token_is_private_and_control_requests_without_it_are_refused():
    with simulator() as url:
        token_file = run_dir(url) / control.FILE
        assert token_file.stat().st_mode & 0o777 == 0o600
        for path, body in CONTROL.items():
            anonymous = httpx.post(f"{url}{path}", content=body, headers={"Content-Type": "application/json"})
            assert anonymous.status_code == 401 and control.HEADER in anonymous.json()["error"], path
            forged = httpx.post(f"{url}{path}", content=body,
                                headers={**control_headers(url), control.HEADER: "guessed"})
            assert forged.status_code == 403 and "not this run's token" in forged.json()["error"], path
            # What a web page can send without asking the browser's leave first (a CORS simple request).
            simple = httpx.post(f"{url}{path}", content=body,
                                headers={"Content-Type": "text/plain", "Origin": "https://any.example"})
            assert simple.status_code == 401, path
            plain = httpx.post(f"{url}{path}", content=body, headers={**control_headers(url),
                                                                     "Content-Type": "text/plain"})
            assert plain.status_code == 415, path
            assert httpx.post(f"{url}{path}", content=body, headers=control_headers(url)).status_code == 200, path
        preflight = httpx.request("OPTIONS", f"{url}/sim/fault", headers={
            "Origin": "https://any.example", "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": control.HEADER})
        assert preflight.status_code >= 400 and "Access-Control-Allow-Origin" not in preflight.headers
        counts = httpx.get(f"{url}/sim/report").json()["counts"]
        assert counts["faults"] == 1, "only the fault sent with the token was applied"


def test_a_body_over_a_mebibyte_is_refused_unread():
    with simulator() as url:
        address = urlsplit(url)
        for path, headers in (("/sim/inject", control_headers(url)), ("/v1/oauth/token", {})):
            connection = http.client.HTTPConnection(address.hostname, address.port, timeout=10)
            connection.putrequest("POST", path)
            for name, value in headers.items():
                connection.putheader(name, value)
            connection.putheader("Content-Length", str(control.MAX_BODY + 1))
            connection.endheaders()  # and not a byte of the body: the answer must not wait for it
            answer = connection.getresponse()
            assert answer.status == 413, path
            assert f"over the {control.MAX_BODY} bytes accepted" in json.loads(answer.read())["error"]
            connection.close()
        opening, closing = '{"data": [], "padding": "', '"}'
        largest = opening + "x" * (control.MAX_BODY - len(opening) - len(closing)) + closing
        assert len(largest.encode()) == control.MAX_BODY
        accepted = httpx.post(f"{url}/sim/inject", content=largest, headers=control_headers(url), timeout=10)
        assert accepted.json() == {"sent_to": 0}


def test_the_simulator_refuses_a_token_it_never_issued():
    with simulator() as url:
        refreshed = httpx.post(f"{url}/v1/oauth/token", data={"grant_type": "refresh_token",
                                                              "refresh_token": "real-schwab-refresh-token"})
        assert refreshed.status_code == 400 and refreshed.json()["error_description"] == NOT_ISSUED
        asked = httpx.get(f"{url}/trader/v1/userPreference", headers={"Authorization": "Bearer I0.real-access"})
        assert asked.status_code == 401


def schwab_token(path: Path) -> bytes:
    """A real-looking Schwab token file, its access token expired: whoever uses it refreshes it first."""
    path.parent.mkdir(mode=0o700)
    token = {"access_token": "I0.real-access", "refresh_token": "real-schwab-refresh-token", "id_token": "real",
             "token_type": "Bearer", "scope": "api", "expires_in": 1800, "expires_at": int(time.time()) - 60}
    path.write_text(json.dumps({"creation_timestamp": int(time.time()), "token": token}))
    return path.read_bytes()


def test_a_simulated_run_never_touches_the_real_token_and_logs_in_to_each_new_simulator(tmp_path: Path):
    real = tmp_path / "secrets" / "schwab_token.json"
    before = schwab_token(real)
    tokens = []
    for _ in range(2):  # a second simulator (a restart) never issued the first one's token: the client logs in again
        with simulator() as url:
            config = config_module.load({"STREAMING_VAR": str(tmp_path / "var"), "SIMULATOR_URL": url,
                                         "SCHWAB_TOKEN_PATH": str(real)})
            assert make_client(config, asyncio=False).get_user_preferences().status_code == 200
            tokens.append(json.loads(config.schwab_token_path.read_text())["token"]["refresh_token"])
            assert config.schwab_token_path.stat().st_mode & 0o777 == 0o600
    assert real.read_bytes() == before, "the real token file is neither read into the simulator nor rewritten"
    assert config.schwab_token_path != real and tokens[0] != tokens[1]
    assert "real-schwab-refresh-token" not in tokens


def test_a_revoked_token_is_not_replaced_behind_a_persons_back(tmp_path: Path):
    """`expire_refresh` models Schwab's expired refresh token: only a person's `make login` helps, so the client
    says so rather than logging in to the simulator by itself."""
    with simulator() as url:
        config = config_module.load({"STREAMING_VAR": str(tmp_path / "var"), "SIMULATOR_URL": url})
        client = make_client(config, asyncio=False)
        assert client.get_user_preferences().status_code == 200
        httpx.post(f"{url}/sim/fault", json={"fault": "expire_refresh"}, headers=control_headers(url)) \
            .raise_for_status()
        force_refresh(client)
        with pytest.raises(OAuthError) as refused:
            client.get_user_preferences()
        assert refused.value.description == REVOKED
