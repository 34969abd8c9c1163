"""The simulator's HTTP side: what schwab-py asks of Schwab over REST, and the simulator's own controls.

Schwab's: `/trader/v1/userPreference` (where the streamer is),
`/marketdata/v1/chains`, `/marketdata/v1/markets`,
`/marketdata/v1/pricehistory` (minute candles: the very bars CHART_EQUITY
streamed, of the last BARS_KEPT per symbol), and OAuth's
`/v1/oauth/authorize` (answered at once with a code for the callback) and
`/v1/oauth/token` (a code or a refresh token traded for tokens,
`tokens.py`). Market data needs a Bearer access token the simulator issued
and still honours, else 401 as Schwab answers. The simulator's own: `GET
/sim/report`, `POST /sim/fault` (`faults.py`) and `POST /sim/inject` (a
frame's text, sent as it is to every logged-in streamer connection), both
only with this run's control token and as JSON (`control.py`). No POST body
over `control.MAX_BODY` is read. Bad requests get Schwab's error shapes with
a detail naming what was wrong.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import json
import logging
import secrets
from datetime import date
from http.server import BaseHTTPRequestHandler
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs, urlencode, urlsplit

from common.simulator import control, faults, protocol
from common.simulator.market import new_york_date
from common.simulator.report import now_ms

if TYPE_CHECKING:
    from common.simulator.server import Simulator

log = logging.getLogger(__name__)

#: Seconds `POST /sim/inject` waits for the frame to be handed to every socket.
INJECT_WAIT = 10.0


def http_handler(sim: Simulator) -> type[BaseHTTPRequestHandler]:
    """The request handler class of `sim`'s HTTP server (a stdlib server, one thread per request)."""

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: Any) -> None:
            log.debug("http " + format % args)

        def _reply(self, status: int, body: Any, close: bool = False) -> None:
            raw = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(raw)))
            if close:  # a body left unread: the connection cannot carry another request
                self.send_header("Connection", "close")
            self.end_headers()
            self.wfile.write(raw)

        def _authorized(self) -> bool:
            scheme, _, token = self.headers.get("Authorization", "").partition(" ")
            if scheme == "Bearer" and sim.tokens.access_ok(token.strip()):
                return True
            self._reply(401, {"errors": [{"status": 401, "title": "Unauthorized",
                                          "detail": "Bearer access token missing, expired or revoked"}]})
            return False

        def _redirect_to_callback(self, params: dict[str, str]) -> None:
            """schwab-py's login flows: the 'Allow' page, answered at once with a code for the callback."""
            if not params.get("redirect_uri") or not params.get("client_id"):
                self._reply(400, {"error": "invalid_request", "error_description": "client_id and redirect_uri required"})
                return
            query = {"code": sim.tokens.issue_code(), "session": secrets.token_hex(8)}
            if params.get("state"):
                query["state"] = params["state"]
            location = f"{params['redirect_uri']}?{urlencode(query)}"
            self.send_response(302)
            self.send_header("Location", location)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def do_GET(self) -> None:
            url = urlsplit(self.path)
            params = {k: v[-1] for k, v in parse_qs(url.query).items()}
            if url.path == "/sim/report":
                self._reply(200, sim.report.to_json())
            elif url.path == "/v1/oauth/authorize":
                self._redirect_to_callback(params)
            elif url.path not in ("/trader/v1/userPreference", "/marketdata/v1/chains", "/marketdata/v1/markets",
                                  "/marketdata/v1/pricehistory"):
                self._reply(404, {"errors": [{"status": 404, "title": "Not Found", "detail": url.path}]})
            elif not self._authorized():
                return
            elif url.path == "/trader/v1/userPreference":
                host = sim.settings.host
                if host in ("0.0.0.0", "::", ""):
                    host = (self.headers.get("Host") or "127.0.0.1").rsplit(":", 1)[0]
                self._reply(200, protocol.user_preference(f"ws://{host}:{sim.settings.ws_port}/ws"))
            elif url.path == "/marketdata/v1/chains":
                self._chain(params)
            elif url.path == "/marketdata/v1/pricehistory":
                self._price_history(params)
            else:
                try:
                    day = date.fromisoformat(params["date"]) if params.get("date") else new_york_date(now_ms())
                except ValueError as error:
                    self._reply(400, {"errors": [{"status": 400, "title": "Bad Request", "detail": str(error)}]})
                    return
                self._reply(200, protocol.market_hours(params.get("markets", "equity").split(","), day))

        def _chain(self, params: dict[str, str]) -> None:
            symbol = params.get("symbol", "").upper()
            if not symbol:
                self._reply(400, {"errors": [{"status": 400, "title": "Bad Request", "detail": "symbol is required"}]})
                return
            now = now_ms()
            with sim.market_lock:
                spot = sim.market.quote(symbol, now).mark
                quotes = sim.market.chain(symbol, now)
            try:
                body = protocol.option_chain(symbol, spot, quotes, new_york_date(now), params)
            except protocol.TooBigBody:
                self._reply(500, protocol.TOO_BIG_BODY)
                return
            except ValueError as error:
                self._reply(400, {"errors": [{"status": 400, "title": "Bad Request", "detail": str(error)}]})
                return
            self._reply(200, body)

        def _price_history(self, params: dict[str, str]) -> None:
            try:
                symbol, start_ms, end_ms = protocol.price_history_window(params)
            except ValueError as error:
                self._reply(400, {"errors": [{"status": 400, "title": "Bad Request", "detail": str(error)}]})
                return
            with sim.market_lock:
                bars = sim.market.bars_between(symbol, start_ms, end_ms, now_ms())
            self._reply(200, protocol.price_history(symbol, bars))

        def do_POST(self) -> None:
            path = urlsplit(self.path).path
            try:
                if path in control.PATHS:
                    control.check(sim.control_token, self.headers.get(control.HEADER),
                                  self.headers.get("Content-Type"))
                length = control.body_length(self.headers.get("Content-Length"))
            except control.Refused as refused:
                log.warning("request refused", extra={"path": path, "status": refused.status,
                                                      "reason": refused.reason})
                self._reply(refused.status, {"error": refused.reason}, close=True)
                return
            raw = self.rfile.read(length)
            if path == "/sim/inject":
                self._inject(raw)
                return
            body = raw.decode(errors="replace")
            if path == "/sim/fault":
                self._fault(body)
            elif path != "/v1/oauth/token":
                self._reply(404, {"errors": [{"status": 404, "title": "Not Found", "detail": self.path}]})
            else:
                self._token({k: v[-1] for k, v in parse_qs(body).items()})

        def _inject(self, raw: bytes) -> None:
            """`POST /sim/inject`: the body, as it is, to every logged-in streamer connection."""
            if not raw:
                self._reply(400, {"error": "empty body: POST the text of the frame to send as the body"})
                return
            try:
                raw.decode("utf-8")
            except UnicodeDecodeError as error:
                self._reply(400, {"error": f"body is not valid UTF-8 ({error.reason} at byte {error.start}):"
                                           " a streamer frame is text"})
                return
            sending = asyncio.run_coroutine_threadsafe(sim.inject(raw), sim.loop)
            try:
                sent_to = sending.result(timeout=INJECT_WAIT)
            except concurrent.futures.TimeoutError:
                self._reply(504, {"error": f"not sent within {INJECT_WAIT:g} s: a client is not reading;"
                                           " it will be sent when the socket drains"})
                return
            self._reply(200, {"sent_to": sent_to})

        def _token(self, form: dict[str, str]) -> None:
            grant = form.get("grant_type")
            if grant == "authorization_code" and sim.tokens.redeem_code(form.get("code", "")):
                log.info("authorization code exchanged for tokens (SIMULATED)")
                self._reply(200, sim.tokens.issue())
            elif grant == "authorization_code":
                self._reply(400, {"error": "invalid_grant", "error_description": "authorization code unknown or used"})
            elif grant != "refresh_token" or not form.get("refresh_token"):
                self._reply(400, {"error": "invalid_client", "error_description": "refresh_token grant required"})
            elif refusal := sim.tokens.refresh_refusal(form["refresh_token"]):
                log.warning("refresh token refused (SIMULATED)", extra={"reason": refusal})
                self._reply(400, {"error": "invalid_client", "error_description": refusal})
            else:
                sim.report.count("token_refreshes")
                log.info("access token refreshed (SIMULATED)")
                self._reply(200, sim.tokens.issue(form["refresh_token"]))

        def _fault(self, body: str) -> None:
            try:
                fault = faults.parse(json.loads(body or "{}").get("fault", ""))
            except (faults.FaultError, ValueError, AttributeError) as error:
                self._reply(400, {"error": str(error)})
                return
            asyncio.run_coroutine_threadsafe(sim.apply(fault), sim.loop).result(timeout=5)
            self._reply(200, {"applied": str(fault)})

    return Handler
