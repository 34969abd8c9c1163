"""The simulator process: Schwab's HTTP endpoints and its streamer, SIMULATED.

HTTP (a stdlib server in a thread) answers what schwab-py asks over REST:
user preferences, token refreshes, option chains and market hours, plus
`/sim/report`. The streamer (websockets, on the event loop) speaks the
protocol in `protocol.py`, fed by one ticker that steps `market.py`.

The report counts a frame only once `await ws.send()` returned for it, so a
consumer can compare what it received with what was really sent. It keeps
counts only; the trades themselves go to a trade log on disk when one is
asked for (`trade_log.py`), so a run of days costs no memory per trade.

Faults (see `faults.py`) come from `--fault` or `POST /sim/fault`. OAuth is
modelled far enough for schwab-py's own flows: `/v1/oauth/authorize` redirects
to the callback with a code, `/v1/oauth/token` trades a code or a refresh
token for tokens, and revoked tokens are refused as Schwab refuses them.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import itertools
import json
import logging
import os
import secrets
import signal
import threading
import time
from collections import OrderedDict, defaultdict
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import date
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

from websockets.asyncio.server import ServerConnection, serve
from websockets.exceptions import ConnectionClosed

from common.feed import option_symbols
from common.simulator import faults, protocol
from common.simulator.market import Market, SimulatedOption, new_york_date
from common.simulator.protocol import (
    CHART_EQUITY,
    LEVELONE_EQUITIES,
    LEVELONE_OPTIONS,
    SentTrade,
    Session,
)
from common.simulator.trade_log import TradeLog

log = logging.getLogger(__name__)

#: Options are updated at this fraction of the equity update rate.
OPTION_SHARE = 0.25
#: Option updates due are sent together at most this often: at a fast tick
#: (4 tickers at 1,000 updates/s tick every 4 ms) one frame of a dozen
#: contracts instead of a dozen frames of one.
OPTION_BATCH_SECONDS = 0.05
#: Seconds between sweeps for option contracts past their expiry.
EXPIRED_OPTIONS_SWEEP = 3600.0
#: Snapshots are split into frames of at most this many items (clients cap frame size at 1 MiB).
SNAPSHOT_CHUNK = 100
#: Characters of an injected frame its log line quotes.
INJECT_EXCERPT = 200
#: Seconds `POST /sim/inject` waits for the frame to be handed to every socket.
INJECT_WAIT = 10.0
ACCESS_TOKEN_SECONDS = 1800
#: Tokens (or login codes) each set remembers: at one new access token per
#: 30 minutes, over half a year's worth, in under 2 MB.
TOKENS_KEPT = 10_000


def now_ms() -> int:
    return time.time_ns() // 1_000_000


@dataclass(frozen=True)
class Settings:
    host: str
    port: int
    ws_port: int
    seed: int
    rate: float
    report: Path | None
    heartbeat: float
    bar_seconds: float
    faults: tuple[faults.Fault, ...] = ()
    fault_after: float = 5.0
    trade_log: Path | None = None


class Report:
    """What was sent, counted after each send completed.

    Only counts live in memory, whatever the run's length. Each counted trade
    goes to the trade log when one is asked for (see `trade_log.py`), flushed
    before the report is read, so the log holds every trade counted so far.
    """

    def __init__(self, seed: int, trade_log: Path | None = None):
        self.seed = seed
        self.started_ms = now_ms()
        self.services: dict[str, dict[str, int]] = defaultdict(lambda: {"frames": 0, "items": 0})
        self.counts: dict[str, int] = defaultdict(int, {
            "quotes": 0, "trades": 0, "bars": 0, "option_items": 0, "heartbeats": 0, "responses": 0,
            "connections": 0, "token_refreshes": 0, "logins": 0, "faults": 0, "injected": 0})
        self.trade_log = TradeLog(trade_log) if trade_log else None
        self._lock = threading.Lock()

    def sent(self, service: str, items: list[dict], trades: list[SentTrade], connection: int = 0) -> None:
        with self._lock:
            self.services[service]["frames"] += 1
            self.services[service]["items"] += len(items)
            if service == LEVELONE_EQUITIES:
                self.counts["trades"] += len(trades)
                self.counts["quotes"] += len(items) - len(trades)
            elif service == LEVELONE_OPTIONS:
                self.counts["option_items"] += len(items)
            elif service == CHART_EQUITY:
                self.counts["bars"] += len(items)
            if self.trade_log and trades:
                self.trade_log.append(trades, connection)

    def count(self, name: str) -> None:
        with self._lock:
            self.counts[name] += 1

    def to_json(self) -> dict[str, Any]:
        """The counts; every trade they count is in the trade log by the time this returns."""
        with self._lock:
            if self.trade_log:
                self.trade_log.flush()
            return {
                "simulated": True,
                "seed": self.seed,
                "started_ms": self.started_ms,
                "generated_ms": now_ms(),
                "trade_log": str(self.trade_log.path) if self.trade_log else None,
                "services": {service: dict(counts) for service, counts in self.services.items()},
                "counts": dict(self.counts),
            }

    def write(self, path: Path) -> None:
        """Atomically: a reader never sees half a report."""
        tmp = path.with_name(f".{path.name}.tmp")
        tmp.write_text(json.dumps(self.to_json()))
        os.replace(tmp, path)

    def close(self) -> None:
        with self._lock:
            if self.trade_log:
                self.trade_log.close()


class RecentSet:
    """A set that forgets its least recently added members beyond `limit`, so months of tokens stay small."""

    def __init__(self, limit: int):
        self.limit = limit
        self._members: OrderedDict[str, None] = OrderedDict()

    def add(self, member: str) -> None:
        self._members[member] = None
        self._members.move_to_end(member)
        if len(self._members) > self.limit:
            self._members.popitem(last=False)

    def update(self, members: Iterable[str]) -> None:
        for member in list(members):
            self.add(member)

    def discard(self, member: str) -> None:
        self._members.pop(member, None)

    def __contains__(self, member: object) -> bool:
        return member in self._members

    def __iter__(self) -> Iterator[str]:
        return iter(self._members)

    def __len__(self) -> int:
        return len(self._members)


class Tokens:
    """Which access and refresh tokens the simulated Schwab still honours.

    Tokens it never issued are honoured (a token file written by hand or by
    `ensure_simulator_token`) until a fault revokes everything seen so far;
    a token first seen after that, such as a fresh login's, is good again.
    Each set remembers the `kept` tokens (or codes) added last: a client
    refreshes every 30 minutes, so only a token revoked more than `kept`
    tokens ago (months, at TOKENS_KEPT) could be honoured again.
    """

    def __init__(self, kept: int = TOKENS_KEPT) -> None:
        self.seen_access = RecentSet(kept)
        self.seen_refresh = RecentSet(kept)
        self.revoked = RecentSet(kept)
        self.codes = RecentSet(kept)
        self._lock = threading.Lock()

    def access_ok(self, token: str) -> bool:
        with self._lock:
            self.seen_access.add(token)
            return bool(token) and token not in self.revoked

    def refresh_ok(self, token: str) -> bool:
        with self._lock:
            self.seen_refresh.add(token)
            return token not in self.revoked

    def issue_code(self) -> str:
        with self._lock:
            code = f"SIM.code.{secrets.token_hex(8)}"
            self.codes.add(code)
            return code

    def redeem_code(self, code: str) -> bool:
        with self._lock:
            if code in self.codes:
                self.codes.discard(code)
                return True
            return False

    def issue(self, refresh_token: str | None = None) -> dict[str, Any]:
        """A token response, with a new refresh token unless one is being refreshed."""
        access = f"SIM.{secrets.token_hex(16)}"
        refresh = refresh_token or f"SIM.refresh.{secrets.token_hex(16)}"
        with self._lock:
            self.seen_access.add(access)
            self.seen_refresh.add(refresh)
        return {"expires_in": ACCESS_TOKEN_SECONDS, "token_type": "Bearer", "scope": "api",
                "refresh_token": refresh, "access_token": access, "id_token": f"SIM.id.{secrets.token_hex(8)}"}

    def revoke_access(self) -> None:
        with self._lock:
            self.revoked.update(self.seen_access)

    def revoke_refresh(self) -> None:
        with self._lock:
            self.revoked.update(self.seen_access)
            self.revoked.update(self.seen_refresh)


class _Connection:
    def __init__(self, ws: ServerConnection, session: Session):
        self.ws = ws
        self.session = session
        #: Held while a request is answered or a tick pushed: the session's state and its frames go together.
        self.lock = asyncio.Lock()
        #: Held for each frame sent, whoever sends it. asyncio's locks are first come, first served, so a frame
        #: injected while another is being sent goes next, before the rest of that tick or answer.
        self.send_lock = asyncio.Lock()
        self.last_send = time.monotonic()
        self.stalled_until = 0.0

    @property
    def stalled(self) -> bool:
        return time.monotonic() < self.stalled_until


class Simulator:
    def __init__(self, settings: Settings):
        self.settings = settings
        self.market = Market(settings.seed, bar_ms=int(settings.bar_seconds * 1000))
        self.market_lock = threading.Lock()
        self.report = Report(settings.seed, settings.trade_log)
        self.streamers = protocol.Streamers()
        self.connections: dict[int, _Connection] = {}
        self._ids = itertools.count(1)
        self._option_carry = 0.0
        self._option_cursor = 0
        self._options_at = 0.0
        self._active_for: tuple = ()
        self._active_keys: tuple[list[str], list[str]] = ([], [])
        self.faults = faults.Faults()
        self.tokens = Tokens()
        self.logged_in = asyncio.Event()
        self.loop: asyncio.AbstractEventLoop | None = None
        self._restart = asyncio.Event()
        self._down_seconds = 0.0

    # ---- streamer ---------------------------------------------------------

    async def serve_connection(self, ws: ServerConnection) -> None:
        connection_id = next(self._ids)
        conn = _Connection(ws, Session(connection_id, protocol.CUSTOMER_ID, self.streamers, self.market.bar_ms))
        self.connections[connection_id] = conn
        self.report.count("connections")
        log.info("streamer connection opened (SIMULATED)", extra={"connection": connection_id})
        try:
            async for raw in ws:
                try:
                    requests = json.loads(raw).get("requests", [])
                except (ValueError, AttributeError):
                    log.warning("unreadable request ignored", extra={"connection": connection_id})
                    continue
                for request in requests:
                    if not await self._handle(conn, request):
                        await ws.close()
                        return
        except ConnectionClosed:
            pass
        finally:
            self.connections.pop(connection_id, None)
            self.streamers.release(connection_id)
            log.info("streamer connection closed", extra={"connection": connection_id})

    async def _handle(self, conn: _Connection, request: dict) -> bool:
        """Answer one request; False when the connection must close."""
        async with conn.lock:
            now = now_ms()
            override = self._override(request)
            if override is not None and override.silent:
                log.info("request left unanswered (SIMULATED fault)",
                         extra={"connection": conn.session.connection, "command": request.get("command")})
                return True
            if override is not None:
                reply = protocol.Reply(protocol.response(request, override.code, override.msg, now), close=override.close)
            else:
                with self.market_lock:
                    reply = conn.session.handle(request, now)
            if reply.frame["response"][0]["content"]["code"] == protocol.SUCCESS and request.get("command") == "LOGIN":
                self.report.count("logins")
                self.logged_in.set()
            await self._send(conn, reply.frame)
            self.report.count("responses")
            code = reply.frame["response"][0]["content"]["code"]
            log.info("request", extra={"connection": conn.session.connection, "service": request.get("service"),
                                       "command": request.get("command"), "code": code,
                                       "keys": len(conn.session.keys(reply.service)) if reply.service else None})
            if reply.snapshot:
                await self._snapshot(conn, reply.service, reply.snapshot, now)
            return not reply.close

    def _override(self, request: dict) -> faults.Override | None:
        """An armed fault's answer, or a revoked token's refusal, instead of the normal one."""
        service, command = request.get("service"), request.get("command")
        override = self.faults.override(service, command)
        if override is not None:
            return override
        if service == "ADMIN" and command == "LOGIN":
            token = (request.get("parameters") or {}).get("Authorization", "")
            if token and not self.tokens.access_ok(token):
                return faults.Override(code=protocol.LOGIN_DENIED, msg="Login denied: access token expired", close=True)
        return None

    async def apply(self, fault: faults.Fault) -> None:
        """Act on `fault` now, or arm it for the request it answers."""
        self.report.count("faults")
        self.report.count(f"fault:{fault}")
        log.warning("fault injected (SIMULATED)", extra={"fault": str(fault)})
        if not fault.immediate:
            self.faults.arm(fault)
            return
        if fault.mode == "restart":
            self._down_seconds = fault.seconds
            self._restart.set()
            return
        if fault.mode == "expire_access":
            self.tokens.revoke_access()
        elif fault.mode == "expire_refresh":
            self.tokens.revoke_refresh()
        await asyncio.gather(*(self._fault_connection(conn, fault) for conn in list(self.connections.values())))

    async def _fault_connection(self, conn: _Connection, fault: faults.Fault) -> None:
        now = now_ms()
        try:
            if fault.mode == "drop":
                conn.ws.transport.abort()
            elif fault.mode == "stall":
                conn.stalled_until = time.monotonic() + (fault.seconds or float("inf"))
            elif fault.mode == "malformed":
                async with conn.lock:
                    await conn.ws.send('{"data": [{"service": "LEVELONE_EQUITIES", "timestamp": %d, "content": [{"key": "SP' % now)
            elif fault.mode == "unknown":
                async with conn.lock:
                    await self._send(conn, {"snapshot": [{"service": "LEVELONE_EQUITIES", "timestamp": now, "content": []}]})
                    await self._send(conn, protocol.data("NEWS_HEADLINE", [{"key": "SPY", "1": "SIMULATED"}], now))
            elif fault.mode == "code":
                async with conn.lock:
                    await self._send(conn, protocol.stop_streaming(now))
                await conn.ws.close(1000, "STOP_STREAMING (SIMULATED)")
            else:  # close, expire_access, expire_refresh: the session ends cleanly
                await conn.ws.close(1000, f"{fault.mode} (SIMULATED)")
        except ConnectionClosed:
            pass

    async def streamer(self) -> None:
        """Serve the streamer socket; a `restart` fault resets every connection and refuses new ones a while."""
        while True:
            async with serve(self.serve_connection, self.settings.host, self.settings.ws_port,
                             close_timeout=0.5) as server:
                await self._restart.wait()
                self._restart.clear()
                for conn in list(self.connections.values()):
                    conn.ws.transport.abort()
                server.close(close_connections=False)
            self.streamers = protocol.Streamers()
            log.warning("streamer down (SIMULATED restart)", extra={"seconds": self._down_seconds})
            await asyncio.sleep(self._down_seconds)
            log.info("streamer up again after a SIMULATED restart")

    async def scheduled_faults(self, specs: tuple[faults.Fault, ...], after: float) -> None:
        """The command line's faults: each `after` seconds after the previous, starting from the first login."""
        if not specs:
            return
        await self.logged_in.wait()
        for fault in specs:
            await asyncio.sleep(after)
            await self.apply(fault)

    async def _snapshot(self, conn: _Connection, service: str, keys: tuple[str, ...], now: int) -> None:
        """Full snapshots for newly subscribed level-one keys, right after the response."""
        items = []
        with self.market_lock:
            for key in keys:
                if service == LEVELONE_EQUITIES:
                    items.append(conn.session.equity_update(self.market.quote(key, now))[0])
                elif service == LEVELONE_OPTIONS:
                    try:
                        items.append(conn.session.option_update(self.market.option_quote(key, now)))
                    except ValueError:
                        log.warning("not an option symbol: no data for it", extra={"key": key})
        items = [item for item in items if item is not None]
        for start in range(0, len(items), SNAPSHOT_CHUNK):
            chunk = items[start:start + SNAPSHOT_CHUNK]
            await self._send(conn, protocol.data(service, chunk, now))
            self.report.sent(service, chunk, [])

    async def _send(self, conn: _Connection, frame: dict) -> None:
        await self._send_text(conn, protocol.encode(frame))

    async def _send_text(self, conn: _Connection, text: bytes) -> None:
        """Send UTF-8 `text` as one text frame, in turn with every other frame of the connection."""
        async with conn.send_lock:
            await conn.ws.send(text, text=True)
        conn.last_send = time.monotonic()

    async def inject(self, text: bytes) -> int:
        """Send `text` (UTF-8) as it is to every logged-in connection, next after the frame each is sending.

        Returns how many connections it was sent to; each is counted in the
        report as `injected`.
        """
        targets = [conn for conn in self.connections.values() if conn.session.logged_in]
        sent = sum(await asyncio.gather(*(self._inject(conn, text) for conn in targets)))
        log.warning("frame injected (SIMULATED)", extra={"sent_to": sent, "bytes": len(text),
                                                         "excerpt": text.decode()[:INJECT_EXCERPT]})
        return sent

    async def _inject(self, conn: _Connection, text: bytes) -> bool:
        try:
            await self._send_text(conn, text)
        except ConnectionClosed:
            return False
        self.report.count("injected")
        return True

    async def ticker(self) -> None:
        """Step the market for everything subscribed and push the changes to every connection."""
        loop = asyncio.get_running_loop()
        next_at = sweep_at = loop.time()
        while True:
            streaming = [c for c in self.connections.values() if c.session.logged_in]
            symbols, options = self._active(streaming)
            interval = min(max(len(symbols) / self.settings.rate, 0.001), 0.25) if symbols else 0.05
            next_at = max(next_at + interval, loop.time() - 1.0)
            await asyncio.sleep(max(0.0, next_at - loop.time()))
            now = now_ms()
            if loop.time() >= sweep_at:
                sweep_at = loop.time() + EXPIRED_OPTIONS_SWEEP
                self._forget_expired_options(now)
            with self.market_lock:
                advance = self.market.advance
                for symbol in symbols:
                    advance(symbol, now)
                stepped = {key: self.market.step_option(key, now)
                           for key in self._option_batch(options, interval, loop.time())}
            if len(streaming) == 1:
                await self._push(streaming[0], now, stepped)
            else:
                await asyncio.gather(*(self._push(c, now, stepped) for c in streaming))

    def _forget_expired_options(self, now: int) -> None:
        """Sweep the market of expired contracts no connection streams: a run of days lists new ones daily."""
        subscribed = {key for conn in self.connections.values() for key in conn.session.keys(LEVELONE_OPTIONS)}
        with self.market_lock:
            forgotten = self.market.forget_expired_options(now, subscribed)
        if forgotten:
            log.info("expired option contracts forgotten", extra={"contracts": forgotten})

    def _active(self, streaming: list[_Connection]) -> tuple[list[str], list[str]]:
        """(symbols to step: equities, charts and option underlyings; valid option keys).

        Worked out again only when a connection comes, goes or changes its subscriptions.
        """
        state = tuple((conn.session.connection, conn.session.version) for conn in streaming)
        if state == self._active_for:
            return self._active_keys
        symbols: dict[str, None] = {}
        options: dict[str, None] = {}
        for conn in streaming:
            symbols.update(dict.fromkeys(conn.session.subscribed(LEVELONE_EQUITIES)))
            symbols.update(dict.fromkeys(conn.session.subscribed(CHART_EQUITY)))
            for key in conn.session.subscribed(LEVELONE_OPTIONS):
                try:
                    symbols[option_symbols.parse(key).underlying] = None
                except ValueError:
                    continue
                options[key] = None
        self._active_for, self._active_keys = state, (list(symbols), list(options))
        return self._active_keys

    def _option_batch(self, options: list[str], interval: float, clock: float) -> list[str]:
        """The option keys to update this tick, round robin, at OPTION_SHARE of the rate.

        What is due accumulates until OPTION_BATCH_SECONDS have passed since
        the last batch; no contract is in a batch twice, and what is due
        beyond every contract once is dropped.
        """
        if not options:
            self._option_carry = 0.0
            return []
        self._option_carry += self.settings.rate * OPTION_SHARE * interval
        if clock - self._options_at < OPTION_BATCH_SECONDS or self._option_carry < 1:
            return []
        self._options_at = clock
        count = min(int(self._option_carry), len(options))
        self._option_carry = min(self._option_carry - count, 1.0)
        cursor = self._option_cursor % len(options)
        batch = options[cursor:cursor + count]
        if len(batch) < count:
            batch += options[:count - len(batch)]
        self._option_cursor = (cursor + count) % len(options)
        return batch

    async def _push(self, conn: _Connection, now: int, stepped: dict[str, SimulatedOption]) -> None:
        try:
            async with conn.lock:
                if not conn.session.logged_in or conn.stalled:
                    return
                session = conn.session
                trades: list[SentTrade] = []
                equities, options, charts = [], [], []
                with self.market_lock:
                    quote, update = self.market.quote, session.equity_update
                    for symbol in session.subscribed(LEVELONE_EQUITIES):
                        item, trade = update(quote(symbol, now))
                        if item is not None:
                            equities.append(item)
                            if trade is not None:
                                trades.append(trade)
                    subscribed = session.subscribed(LEVELONE_OPTIONS)
                    for key, option in stepped.items():
                        if key in subscribed and (item := session.option_update(option)) is not None:
                            options.append(item)
                    for symbol in session.subscribed(CHART_EQUITY):
                        charts.extend(session.chart_update(self.market.bars_after(symbol, session.chart_after[symbol], now)))
                for service, items, sent_trades in ((LEVELONE_EQUITIES, equities, trades),
                                                    (LEVELONE_OPTIONS, options, []), (CHART_EQUITY, charts, [])):
                    if items:
                        await self._send(conn, protocol.data(service, items, now))
                        self.report.sent(service, items, sent_trades, conn.session.connection)
                if time.monotonic() - conn.last_send >= self.settings.heartbeat:
                    await self._send(conn, protocol.heartbeat(now))
                    self.report.count("heartbeats")
        except ConnectionClosed:
            pass

    # ---- HTTP -------------------------------------------------------------

    def http_handler(self) -> type[BaseHTTPRequestHandler]:
        sim = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: Any) -> None:
                log.debug("http " + format % args)

            def _reply(self, status: int, body: Any) -> None:
                raw = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(raw)))
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
                elif url.path not in ("/trader/v1/userPreference", "/marketdata/v1/chains", "/marketdata/v1/markets"):
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
                except ValueError as error:
                    self._reply(400, {"errors": [{"status": 400, "title": "Bad Request", "detail": str(error)}]})
                    return
                self._reply(200, body)

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length)
                path = urlsplit(self.path).path
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
                elif not sim.tokens.refresh_ok(form["refresh_token"]):
                    log.warning("refresh token refused: expired (SIMULATED)")
                    self._reply(400, {"error": "invalid_client",
                                      "error_description": "refresh_token_authentication_error"})
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


async def run(settings: Settings) -> None:
    """Serve until SIGTERM or SIGINT; then write the report and return, in well under two seconds."""
    sim = Simulator(settings)
    stop = asyncio.Event()
    sim.loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        sim.loop.add_signal_handler(signum, stop.set)
    log.info("SIMULATED Schwab market data: nothing served here comes from Schwab",
             extra={"host": settings.host, "port": settings.port, "ws_port": settings.ws_port,
                    "seed": settings.seed, "rate": settings.rate, "faults": [str(f) for f in settings.faults]})
    try:
        await _serve(sim, settings, stop)
    finally:
        if settings.report:
            sim.report.write(settings.report)
        sim.report.close()
        log.info("simulator stopped", extra={"report": str(settings.report) if settings.report else None})


async def _serve(sim: Simulator, settings: Settings, stop: asyncio.Event) -> None:
    """Run HTTP, the streamer and the ticker until `stop`; a task that fails takes the process down with it."""
    httpd = ThreadingHTTPServer((settings.host, settings.port), sim.http_handler())
    httpd.daemon_threads = True
    threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.1}, daemon=True).start()
    tasks = [asyncio.create_task(work) for work in
             (sim.streamer(), sim.ticker(), sim.scheduled_faults(settings.faults, settings.fault_after))]
    stopping = asyncio.create_task(stop.wait())
    log.info("simulator ready", extra={"http": f"http://{settings.host}:{settings.port}",
                                       "streamer": f"ws://{settings.host}:{settings.ws_port}/ws"})
    try:
        while not stopping.done():
            done, _ = await asyncio.wait((*tasks, stopping), return_when=asyncio.FIRST_COMPLETED)
            failed = [task for task in done if task is not stopping and (task.cancelled() or task.exception())]
            if failed:
                raise failed[0].exception() or RuntimeError("a simulator task was cancelled")
            tasks = [task for task in tasks if not task.done()]
    finally:
        log.info("simulator stopping")
        for task in (*tasks, stopping):
            task.cancel()
        await asyncio.gather(*tasks, stopping, return_exceptions=True)
        httpd.shutdown()
        httpd.server_close()
