"""`make login`: create the Schwab token file on a headless host, by hand.

This is schwab-py's own manual flow (`client_from_manual_flow`): it prints
Schwab's authorization URL, you open it in any browser, log in and allow the
app, and paste back the URL the browser was sent to. The token is written
0600 inside a 0700 directory at SCHWAB_TOKEN_PATH; a running ingest that was
waiting for it (expired refresh token) notices and logs in by itself.

Without Schwab credentials the same flow runs against the simulator: the URL
to open is rewritten to the simulator, which 'allows' at once.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import schwab.auth
from authlib.integrations.httpx_client import OAuth2Client

from common import config as configuration
from common import log
from common.feed.schwab_client import (
    SCHWAB_HOST,
    SIMULATOR_APP_KEY,
    SIMULATOR_APP_SECRET,
    SimulatorTransport,
    write_token_file,
)


def private_dir(path: Path) -> None:
    """The token's directory, created readable by its owner only; one that exists is left as it is
    (SCHWAB_TOKEN_PATH=/etc/schwab.json must not close /etc), with a warning if others can reach into it."""
    configuration.private_directory(path)


def simulated_oauth_client(simulator_url: str) -> type[OAuth2Client]:
    """schwab-py's OAuth2 session class, aimed at the simulator (schwab-py has no setting for its host)."""

    class SimulatorOAuth2Client(OAuth2Client):
        def __init__(self, *args: Any, **kwargs: Any):
            super().__init__(*args, transport=SimulatorTransport(simulator_url), **kwargs)

    return SimulatorOAuth2Client


def main() -> None:
    log.setup("login", "WARNING")  # the person at the prompt reads schwab-py's instructions, not INFO lines
    config = configuration.load()
    path = config.schwab_token_path
    callback = config.schwab_callback_url
    private_dir(path.parent)
    if config.uses_simulator:
        schwab.auth.OAuth2Client = simulated_oauth_client(config.simulator_url)
        api_key, app_secret = SIMULATOR_APP_KEY, SIMULATOR_APP_SECRET
        sys.stdout.write(f"SIMULATED login: no Schwab credentials, so the simulator at {config.simulator_url} "
                         f"stands in. Open its address in place of https://{SCHWAB_HOST} below.\n")
    else:
        api_key, app_secret = config.schwab_app_key, config.schwab_app_secret

    def write(token: dict, *args: Any, **kwargs: Any) -> None:
        write_token_file(path, token)

    schwab.auth.client_from_manual_flow(api_key, app_secret, callback, str(path), token_write_func=write)
    sys.stdout.write(f"Token written to {path} (0600). A waiting ingest picks it up by itself.\n")


if __name__ == "__main__":
    main()
