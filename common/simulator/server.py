"""The simulator process: Schwab's HTTP endpoints and its streamer, SIMULATED.

HTTP (a stdlib server in a thread) answers what schwab-py asks over REST
(`rest.py`), with the OAuth tokens of `tokens.py`. The streamer
(websockets, on the event loop) speaks the protocol in `protocol.py`, fed by
one ticker that steps `market.py`; what it sent is counted in `report.py`.
Faults (see `faults.py`) come from `--fault` or `POST /sim/fault`, which
like `POST /sim/inject` needs the control token each start writes to the run
directory (`control.py`).
"""

from __future__ import annotations

import asyncio
import itertools
import json
import logging
import signal
import threading
import time
from dataclasses import dataclass
from http.server import ThreadingHTTPServer
from pathlib import Path

from websockets.asyncio.server import ServerConnection, serve
from websockets.exceptions import ConnectionClosed

from common.feed import option_symbols
from common.redact import REDACT
from common.simulator import control, faults, protocol, rest
from common.simulator.market import Market, SimulatedOption
from common.simulator.protocol import (
    LEVELONE_OPTIONS,
    TICKER_CHARTS,
    TICKER_LEVEL_ONE,
    SentTrade,
    Session,
)
from common.simulator.report import Report, now_ms
from common.simulator.tokens import Tokens

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
    #: Where the control token is written (control.FILE); the repo's tools read it there.
    run_dir: Path
    faults: tuple[faults.Fault, ...] = ()
    fault_after: float = 5.0
    trade_log: Path | None = None
    #: Every level-one item marked delayed, as for an account not entitled to real-time data.
    delayed: bool = False


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
        #: Every symbol whose chart was ever streamed: its market goes on without a listener (see `_active`).
        self._charted: dict[str, None] = {}
        self.faults = faults.Faults()
        self.tokens = Tokens()
        #: This run's control token: `POST /sim/inject` and `/sim/fault` need it (control.py).
        self.control_token = control.new_token()
        REDACT.add(self.control_token)
        self.logged_in = asyncio.Event()
        self.loop: asyncio.AbstractEventLoop | None = None
        self._restart = asyncio.Event()
        self._down_seconds = 0.0

    # ---- streamer ---------------------------------------------------------

    async def serve_connection(self, ws: ServerConnection) -> None:
        connection_id = next(self._ids)
        conn = _Connection(ws, Session(connection_id, protocol.CUSTOMER_ID, self.streamers, self.market.bar_ms,
                                       self.settings.delayed))
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
            if not self.tokens.access_ok(token):
                return faults.Override(code=protocol.LOGIN_DENIED, msg="Login denied: access token expired, revoked "
                                       "or not issued by this simulator", close=True)
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
                if service in TICKER_LEVEL_ONE:
                    items.append(conn.session.ticker_update(self.market.quote(key, now), service)[0])
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

        A symbol whose chart was once streamed keeps trading while nobody
        listens, as a market does: a client that was away finds the bars it
        missed in the price history. Worked out again only when a connection
        comes, goes or changes its subscriptions.
        """
        state = tuple((conn.session.connection, conn.session.version) for conn in streaming)
        if state == self._active_for:
            return self._active_keys
        symbols: dict[str, None] = {}
        options: dict[str, None] = {}
        for conn in streaming:
            for service in TICKER_LEVEL_ONE:
                symbols.update(dict.fromkeys(conn.session.subscribed(service)))
            for service in TICKER_CHARTS:
                self._charted.update(dict.fromkeys(conn.session.subscribed(service)))
            for key in conn.session.subscribed(LEVELONE_OPTIONS):
                try:
                    symbols[option_symbols.underlying_of(option_symbols.parse(key))] = None
                except ValueError:
                    continue
                options[key] = None
        symbols.update(self._charted)
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
                # Per service, its items and the trades they carry.
                sending: dict[str, tuple[list[dict], list[SentTrade]]] = {}
                with self.market_lock:
                    quote, update = self.market.quote, session.ticker_update
                    for service in TICKER_LEVEL_ONE:
                        items, trades = sending[service] = [], []
                        for symbol in session.subscribed(service):
                            item, trade = update(quote(symbol, now), service)
                            if item is not None:
                                items.append(item)
                                if trade is not None:
                                    trades.append(trade)
                    subscribed = session.subscribed(LEVELONE_OPTIONS)
                    options = sending[LEVELONE_OPTIONS] = [], []
                    for key, option in stepped.items():
                        if key in subscribed and (item := session.option_update(option)) is not None:
                            options[0].append(item)
                    for service in TICKER_CHARTS:
                        charts = sending[service] = [], []
                        for symbol in session.subscribed(service):
                            charts[0].extend(session.chart_update(
                                self.market.bars_after(symbol, session.chart_after[symbol], now), service))
                for service, (items, sent_trades) in sending.items():
                    if items:
                        await self._send(conn, protocol.data(service, items, now))
                        self.report.sent(service, items, sent_trades, conn.session.connection)
                if time.monotonic() - conn.last_send >= self.settings.heartbeat:
                    await self._send(conn, protocol.heartbeat(now))
                    self.report.count("heartbeats")
        except ConnectionClosed:
            pass


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
    token_file = control.write_token(settings.run_dir, sim.control_token)
    httpd = ThreadingHTTPServer((settings.host, settings.port), rest.http_handler(sim))
    httpd.daemon_threads = True
    threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.1}, daemon=True).start()
    tasks = [asyncio.create_task(work) for work in
             (sim.streamer(), sim.ticker(), sim.scheduled_faults(settings.faults, settings.fault_after))]
    stopping = asyncio.create_task(stop.wait())
    log.info("simulator ready", extra={"http": f"http://{settings.host}:{settings.port}",
                                       "streamer": f"ws://{settings.host}:{settings.ws_port}/ws",
                                       "control_token_file": str(token_file)})
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
