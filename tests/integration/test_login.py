"""`make login`: schwab-py's manual flow, driven as a person would drive it, against the simulator."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import httpx

from common import config as config_module
from common.config import simulator_token_path
from common.feed.schwab_client import make_client
from tests.helpers.simulator_process import ROOT, simulator


def test_login_writes_a_private_token_the_simulator_honours(tmp_path: Path):
    schwab_path = tmp_path / "secrets" / "schwab_token.json"
    token_path = simulator_token_path(schwab_path)  # the simulator's own: a login here never replaces Schwab's
    with simulator() as url:
        env = {**os.environ, "SIMULATOR_URL": url, "SCHWAB_TOKEN_PATH": str(schwab_path),
               "STREAMING_VAR": str(tmp_path)}
        for credential in ("SCHWAB_APP_KEY", "SCHWAB_APP_SECRET"):
            env.pop(credential, None)
        login = subprocess.Popen([sys.executable, "-m", "common.feed.login"], cwd=ROOT, env=env, text=True,
                                 stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        shown = []
        while "/v1/oauth/authorize" not in (line := login.stdout.readline()):
            assert line, "".join(shown)
            shown.append(line)
        assert any("SIMULATED login" in line for line in shown)
        authorize = urlsplit(line.strip())
        assert authorize.netloc == "api.schwabapi.com"
        # The person opens the URL and clicks 'Allow'; the browser lands on the callback.
        allowed = httpx.get(f"{url}{authorize.path}?{authorize.query}", follow_redirects=False)
        assert allowed.status_code == 302
        redirect = allowed.headers["Location"]
        assert redirect.startswith("https://127.0.0.1:8182?") and "code" in parse_qs(urlsplit(redirect).query)
        out, _ = login.communicate(redirect + "\n", timeout=30)
        assert login.returncode == 0, out
        assert f"Token written to {token_path} (0600)" in out

    assert token_path.stat().st_mode & 0o777 == 0o600
    assert token_path.parent.stat().st_mode & 0o777 == 0o700
    wrapped = json.loads(token_path.read_text())
    assert wrapped["token"]["refresh_token"].startswith("SIM.refresh.") and wrapped["creation_timestamp"] > 0
    assert not any(p.name.endswith(".tmp") for p in token_path.parent.iterdir())
    assert not schwab_path.exists()


def test_the_new_token_works(tmp_path: Path):
    """The token a login wrote is one schwab-py's client uses: refreshed, as a simulator client always does first,
    and not replaced by a new login."""
    with simulator() as url:
        code = parse_qs(urlsplit(httpx.get(
            f"{url}/v1/oauth/authorize?response_type=code&client_id=k&redirect_uri=https://127.0.0.1:8182",
            follow_redirects=False).headers["Location"]).query)["code"][0]
        token = httpx.post(f"{url}/v1/oauth/token", data={"grant_type": "authorization_code", "code": code}).json()
        again = httpx.post(f"{url}/v1/oauth/token", data={"grant_type": "authorization_code", "code": code})
        assert again.status_code == 400 and again.json()["error"] == "invalid_grant"  # a code works once
        config = config_module.load({"SIMULATOR_URL": url, "SCHWAB_TOKEN_PATH": str(tmp_path / "token.json")})
        token["expires_at"] = 4_000_000_000
        config.schwab_token_path.write_text(json.dumps({"creation_timestamp": 1, "token": token}))
        assert make_client(config, asyncio=False).get_user_preferences().status_code == 200
        assert httpx.get(f"{url}/sim/report").json()["counts"]["token_refreshes"] == 1
        assert json.loads(config.schwab_token_path.read_text())["token"]["refresh_token"] == token["refresh_token"]
