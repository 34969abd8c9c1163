"""How every actor builds its schwab-py clients, for Schwab or for the simulator.

Built exactly as `schwab.auth.client_from_token_file` builds them (token
metadata, an authlib OAuth2 session on Schwab's token endpoint, refreshing 5
minutes early, each new token written back to the file), so the code under
test is schwab-py's own. Without Schwab credentials the session gets an httpx
transport that sends every `https://api.schwabapi.com` request, token refreshes
included, to the simulator instead: schwab-py has no setting for its base URL.
The simulator's token is its own file (`Config.schwab_token_path`), and a
token the simulator says it never issued is replaced by a login there, which
the simulator allows at once (`SimulatorSession`). Nothing here ever starts
an interactive login with Schwab.
"""

from __future__ import annotations

import json
import logging
import time
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
from authlib.integrations.base_client import OAuthError
from authlib.integrations.httpx_client import AsyncOAuth2Client, OAuth2Client
from schwab.auth import TOKEN_ENDPOINT, TokenMetadata
from schwab.client import AsyncClient, Client
from schwab.debug import register_redactions
from schwab.streaming import StreamClient

from common.config import Config, private_directory
from common.durable import write_durably
from common.feed.simulated_oauth import NOT_ISSUED
from common.redact import REDACT

log = logging.getLogger(__name__)

SCHWAB_HOST = "api.schwabapi.com"
#: The simulator accepts any client; these only fill the OAuth fields.
SIMULATOR_APP_KEY = "simulator-app-key"
SIMULATOR_APP_SECRET = "simulator-app-secret"
AUTHORIZE_ENDPOINT = f"https://{SCHWAB_HOST}/v1/oauth/authorize"
#: Where the simulator's 'Allow' sends the browser; a simulator client reads the code off the redirect instead.
SIMULATOR_CALLBACK = "https://127.0.0.1:8182"
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
    """Write a placeholder simulator token file unless one exists; True when written.

    Nothing in it was issued by the simulator: the first request refreshes
    it (`make_client`), the simulator refuses its refresh token as never
    issued, and the client logs in to the simulator (`SimulatorSession`).
    Written, rather than a login made here, so that building a client never
    waits on a simulator still starting.
    """
    if path.exists():
        return False
    private_directory(path.parent)
    issued = int(time.time() if now is None else now)
    token = {
        "access_token": "SIM.placeholder",
        "refresh_token": "SIM.placeholder",
        "id_token": "SIM.placeholder",
        "token_type": "Bearer",
        "scope": "api",
        "expires_in": 1800,
        "expires_at": issued,
    }
    write_token_file(path, {"creation_timestamp": issued, "token": token})
    log.info("wrote a SIMULATED placeholder token file", extra={"path": str(path)})
    return True


def _allowed_code(allowed: httpx.Response) -> str:
    """The authorization code on the simulator's 'Allow' redirect; without one, a refusal like a refused token's."""
    codes = parse_qs(urlsplit(allowed.headers.get("Location", "")).query).get("code")
    if allowed.status_code != 302 or not codes:
        raise OAuthError(error="access_denied",
                         description=f"the simulator allowed no login (HTTP {allowed.status_code} to its authorize page)")
    return codes[-1]


_LOGIN_PARAMS = {"response_type": "code", "client_id": SIMULATOR_APP_KEY, "redirect_uri": SIMULATOR_CALLBACK}


class SimulatorSession(OAuth2Client):
    """schwab-py's OAuth2 session for the simulator: a refresh token the simulator never issued (the placeholder,
    or one from before the simulator restarted) is replaced by a login there, as `make login` would do. A revoked
    one is not (the `expire_refresh` fault, Schwab's expired token): a person logs in."""

    def refresh_token(self, url: str | None = None, refresh_token: str | None = None, **kwargs: Any) -> Any:
        try:
            return super().refresh_token(url, refresh_token=refresh_token, **kwargs)
        except OAuthError as refused:
            if refused.description != NOT_ISSUED:
                raise
        log.info("the simulator never issued this token: logging in to it (SIMULATED)")
        allowed = self.request("GET", AUTHORIZE_ENDPOINT, params=_LOGIN_PARAMS, withhold_token=True,
                               follow_redirects=False)
        token = self.fetch_token(url or TOKEN_ENDPOINT, grant_type="authorization_code",
                                 code=_allowed_code(allowed))
        self.update_token(token, refresh_token=refresh_token)
        return token


class AsyncSimulatorSession(AsyncOAuth2Client):
    """`SimulatorSession`, for the asyncio client."""

    async def refresh_token(self, url: str | None = None, refresh_token: str | None = None, **kwargs: Any) -> Any:
        try:
            return await super().refresh_token(url, refresh_token=refresh_token, **kwargs)
        except OAuthError as refused:
            if refused.description != NOT_ISSUED:
                raise
        log.info("the simulator never issued this token: logging in to it (SIMULATED)")
        allowed = await self.request("GET", AUTHORIZE_ENDPOINT, params=_LOGIN_PARAMS, withhold_token=True,
                                     follow_redirects=False)
        token = await self.fetch_token(url or TOKEN_ENDPOINT, grant_type="authorization_code",
                                       code=_allowed_code(allowed))
        await self.update_token(token, refresh_token=refresh_token)
        return token


def make_client(config: Config, *, asyncio: bool) -> AsyncClient | Client:
    """A real schwab-py client: Schwab's when credentials are set, else the simulator's."""
    path = config.schwab_token_path
    transport: httpx.BaseTransport | httpx.AsyncBaseTransport | None = None
    sessions: tuple[type[AsyncOAuth2Client], type[OAuth2Client]] = (AsyncOAuth2Client, OAuth2Client)
    if config.uses_simulator:
        ensure_simulator_token(path)
        api_key, app_secret = SIMULATOR_APP_KEY, SIMULATOR_APP_SECRET
        transport = AsyncSimulatorTransport(config.simulator_url) if asyncio else SimulatorTransport(config.simulator_url)
        sessions = (AsyncSimulatorSession, SimulatorSession)
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
    client: AsyncClient | Client
    if asyncio:
        async def update_token(token: dict, *args: Any, **kwargs: Any) -> None:
            write_token(token, *args, **kwargs)

        client = AsyncClient(api_key, sessions[0](api_key, update_token=update_token, **session_args),
                             token_metadata=metadata)
    else:
        client = Client(api_key, sessions[1](api_key, update_token=write_token, **session_args),
                        token_metadata=metadata)
    if config.uses_simulator:
        # Only the simulator's answer to a refresh tells whether it issued the token: one that restarted since
        # never did, and the session then logs in to it, before the first request rather than after a 401.
        force_refresh(client)
    return client


def force_refresh(client: AsyncClient | Client) -> None:
    """Refresh the access token before the next request: Schwab refused it before its expiry.

    authlib refreshes only a token it believes expired, so it is marked expired.
    """
    client.session.token["expires_at"] = 0


def make_stream_client(client: AsyncClient | Client) -> StreamClient:
    return StreamClient(client)
