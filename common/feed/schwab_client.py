"""How every actor builds its schwab-py clients, for Schwab or for the simulator.

Built exactly as `schwab.auth.client_from_token_file` builds them (token
metadata, an authlib OAuth2 session on Schwab's token endpoint, refreshing 5
minutes early, each new token written back to the file), so the code under
test is schwab-py's own. Without Schwab credentials the session gets an httpx
transport that sends every `https://api.schwabapi.com` request, token refreshes
included, to the simulator instead: schwab-py has no setting for its base URL.
Nothing here ever starts an interactive login.
"""

from __future__ import annotations

import json
import logging
import secrets
import time
from pathlib import Path
from typing import Any

import httpx
from authlib.integrations.httpx_client import AsyncOAuth2Client, OAuth2Client
from schwab.auth import TOKEN_ENDPOINT, TokenMetadata
from schwab.client import AsyncClient, Client
from schwab.debug import register_redactions
from schwab.streaming import StreamClient

from common.config import Config
from common.durable import write_durably
from common.redact import REDACT

log = logging.getLogger(__name__)

SCHWAB_HOST = "api.schwabapi.com"
#: The simulator accepts any client; these only fill the OAuth fields.
SIMULATOR_APP_KEY = "simulator-app-key"
SIMULATOR_APP_SECRET = "simulator-app-secret"
#: authlib refreshes this long before expiry; schwab-py's value.
LEEWAY = 300


class TokenError(RuntimeError):
    """No usable token: a person must run schwab-py's login flow by hand."""


def _redirect(request: httpx.Request, target: httpx.URL) -> httpx.Request:
    if request.url.host == SCHWAB_HOST:
        request.url = request.url.copy_with(scheme=target.scheme, host=target.host, port=target.port)
        request.headers["Host"] = target.netloc.decode()
    return request


class SimulatorTransport(httpx.HTTPTransport):
    """Sends Schwab's API requests to the simulator at `simulator_url`."""

    def __init__(self, simulator_url: str, **kwargs: Any):
        super().__init__(**kwargs)
        self.target = httpx.URL(simulator_url)

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        return super().handle_request(_redirect(request, self.target))


class AsyncSimulatorTransport(httpx.AsyncHTTPTransport):
    """Sends Schwab's API requests to the simulator at `simulator_url`."""

    def __init__(self, simulator_url: str, **kwargs: Any):
        super().__init__(**kwargs)
        self.target = httpx.URL(simulator_url)

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        return await super().handle_async_request(_redirect(request, self.target))


def redact_tokens(token: dict) -> None:
    """Tokens are secrets: from now on no log line of this process shows them."""
    REDACT.add(*(str(token.get(name) or "") for name in ("access_token", "refresh_token", "id_token")))


def write_token_file(path: Path, wrapped: dict) -> None:
    """Replace the token file atomically and durably (a power cut must not leave it empty: the refresh token in it
    is the only way back in without a login by hand), readable by its owner only (0600)."""
    redact_tokens(wrapped.get("token", wrapped))
    write_durably(path, json.dumps(wrapped).encode(), mode=0o600)


def ensure_simulator_token(path: Path, now: float | None = None) -> bool:
    """Write a simulator token file unless one exists; True when written.

    Its access token is already expired, so the first request refreshes it
    through the simulator's `/v1/oauth/token`, as with a day-old Schwab token.
    """
    if path.exists():
        return False
    if not path.parent.exists():
        path.parent.mkdir(parents=True, mode=0o700)
    issued = int(time.time() if now is None else now)
    token = {
        "access_token": "SIM.expired",
        "refresh_token": f"SIM.refresh.{secrets.token_hex(16)}",
        "id_token": "SIM.id",
        "token_type": "Bearer",
        "scope": "api",
        "expires_in": 1800,
        "expires_at": issued - 1,
    }
    write_token_file(path, {"creation_timestamp": issued, "token": token})
    log.info("wrote a SIMULATED token file", extra={"path": str(path)})
    return True


def make_client(config: Config, *, asyncio: bool) -> AsyncClient | Client:
    """A real schwab-py client: Schwab's when credentials are set, else the simulator's."""
    path = config.schwab_token_path
    transport: httpx.BaseTransport | httpx.AsyncBaseTransport | None = None
    if config.uses_simulator:
        ensure_simulator_token(path)
        api_key, app_secret = SIMULATOR_APP_KEY, SIMULATOR_APP_SECRET
        transport = AsyncSimulatorTransport(config.simulator_url) if asyncio else SimulatorTransport(config.simulator_url)
    else:
        if not path.exists():
            raise TokenError(f"no Schwab token at {path}: create one with schwab-py's login flow, run by hand")
        api_key, app_secret = config.schwab_app_key, config.schwab_app_secret

    metadata = TokenMetadata.from_loaded_token(json.loads(path.read_text()), lambda t, *_, **__: write_token_file(path, t))
    register_redactions(metadata.token)
    redact_tokens(metadata.token)
    write_token = metadata.wrapped_token_write_func()
    session_args: dict[str, Any] = {
        "client_secret": app_secret,
        "token": metadata.token,
        "token_endpoint": TOKEN_ENDPOINT,
        "leeway": LEEWAY,
    }
    if transport is not None:
        session_args["transport"] = transport
    if asyncio:
        async def update_token(token: dict, *args: Any, **kwargs: Any) -> None:
            write_token(token, *args, **kwargs)

        return AsyncClient(api_key, AsyncOAuth2Client(api_key, update_token=update_token, **session_args),
                           token_metadata=metadata)
    return Client(api_key, OAuth2Client(api_key, update_token=write_token, **session_args), token_metadata=metadata)


def force_refresh(client: AsyncClient | Client) -> None:
    """Refresh the access token before the next request: Schwab refused it before its expiry.

    authlib refreshes only a token it believes expired, so it is marked expired.
    """
    client.session.token["expires_at"] = 0


def make_stream_client(client: AsyncClient | Client) -> StreamClient:
    return StreamClient(client)
