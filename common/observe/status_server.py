"""The metrics actor's HTTP side: /metrics, /healthz, the status page and its data.

The page's data: `/api/series?ticker=&limit=` (the latest trades of the last
SERIES_DAYS, with their SMA9 and VWAP) and `/api/bars?ticker=&range=` (the
stored one-minute bars of the last 15 minutes, hour or session before a
ticker's newest bar, each with SMA9 and VWAP as of its close, and where it
came from). Every parameter is checked, and a bad one answered 400 naming
what is accepted.

Who may ask: the page reads market data with the writer's login, past the
database's row-level security, so with STATUS_PAGE_TOKEN set (required when
METRICS_HTTP_HOST is not loopback: common/config.py) every path but /healthz
answers 401 unless the request carries it, as a bearer token or as basic
auth's password (what a browser's prompt sends, and then sends again with
each of the page's own requests). /healthz stays open for a HEALTHCHECK or a
load balancer: it says how the actors are, never a price.

It serves from a background thread. The actor loop stays the owner of the
state: it replaces `StatusServer.snapshot` with a new immutable `Snapshot`
(one reference assignment), which request threads only read.

Overflow policy: each request gets its own thread, at most MAX_IN_FLIGHT at
once; one more is answered 503 at once and closed. Beyond that the kernel's
listen backlog (`request_queue_size`) holds connections, then refuses them.
A client silent for CLIENT_TIMEOUT is dropped, so none holds a thread long.
"""

from __future__ import annotations

import base64
import hmac
import logging
import socket
import sys
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

import msgspec
import psycopg
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest

from common.config import ACTORS, Config
from common.feed.market_hours import NEW_YORK
from common.observe import status_page
from common.observe.exposition import Snapshot, SnapshotCollector, health
from common.redact import REDACT
from common.store.connection import open_connection, reason

log = logging.getLogger("metrics.http")

MAX_IN_FLIGHT = 8
CLIENT_TIMEOUT = 10.0
#: Longest a request waits for the database (connect, then each query).
DB_TIMEOUT_S = 3
SERIES_LIMIT = 2000
_JSON = "application/json"
_BUSY = b"HTTP/1.0 503 Service Unavailable\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
#: Answered without the credential: what a container's HEALTHCHECK or a load balancer asks, and no market data.
OPEN_PATHS = ("/healthz",)
_CHALLENGE = 'Basic realm="streaming-service status", charset="UTF-8"'
_UNAUTHORIZED = msgspec.json.encode({"error": "this needs STATUS_PAGE_TOKEN: send it as Authorization: Bearer <token>, "
                                              "or as the password of basic auth (any user name)"})

# A trade's indicators are stored with it, under the same key; the join
# leaves out the few newest trades whose indicators are still on their way.
# Bounded in time on both sides, by a value the planner sees (`read_series`),
# so that it opens and locks only the days since, not every daily partition.
SERIES_SQL = """
SELECT (extract(epoch FROM i.timestamp) * 1000)::bigint, i.day_volume, e.price::float8, i.sma9::float8, i.vwap::float8
FROM public.indicators i
JOIN public.equity_data e USING (ticker, timestamp, day_volume)
WHERE i.ticker = %(ticker)s AND i.timestamp >= %(since)s AND e.timestamp >= %(since)s
  AND i.timestamp < %(until)s AND e.timestamp < %(until)s
ORDER BY i.timestamp DESC, i.day_volume DESC
LIMIT %(limit)s
"""
#: How far back the page looks for trades: past a long weekend, not into every day retention keeps.
SERIES_DAYS = 7


#: The bars' ranges the page offers: an interval before the ticker's newest bar, or its whole New York day.
BAR_RANGES = {"15m": timedelta(minutes=15), "1h": timedelta(hours=1), "session": None}
BARS_LIMIT = 1500
#: A ticker's newest bar, however old: equity_bars has a partition a month (sql/031), so this reads each month's
#: (ticker, timestamp) index from its end, and plans and locks a partition a month stored (37 at three years).
NEWEST_BAR_SQL = "SELECT max(timestamp) FROM public.equity_bars WHERE ticker = %(ticker)s"
#: How far past a range's newest bar its indicator values are looked for (the last bar's trades).
LAST_BAR_REACH = timedelta(days=1)
# Each bar of (since, newest] with the indicator values of the last trade inside it: a bar runs to the next stored
# bar's start (the last one as long as the one before it, or a minute). Every scan is bounded by constants the
# planner prunes partitions by, so that only the range's few partitions of indicators (a partition a day) are
# planned and locked, never a year of them.
BARS_SQL = """
WITH bars AS (
    SELECT b.timestamp AS start, b.open, b.high, b.low, b.close, b.volume, b.source,
           lead(b.timestamp) OVER w AS next_start, b.timestamp - lag(b.timestamp) OVER w AS length
    FROM public.equity_bars b
    WHERE b.ticker = %(ticker)s AND b.timestamp > %(since)s AND b.timestamp <= %(newest)s
    WINDOW w AS (ORDER BY b.timestamp)
    ORDER BY b.timestamp DESC
    LIMIT %(limit)s
)
SELECT (extract(epoch FROM bars.start) * 1000)::bigint, bars.open::float8, bars.high::float8, bars.low::float8,
       bars.close::float8, bars.volume::float8, bars.source, i.sma9::float8, i.vwap::float8
FROM bars
LEFT JOIN LATERAL (
    SELECT sma9, vwap FROM public.indicators
    WHERE ticker = %(ticker)s AND timestamp >= bars.start
      AND timestamp < coalesce(bars.next_start, bars.start + coalesce(bars.length, interval '1 minute'))
      AND timestamp > %(since)s AND timestamp < %(until)s
    ORDER BY timestamp DESC, day_volume DESC
    LIMIT 1
) i ON true
ORDER BY bars.start
"""


def bars_since(newest: datetime, span: timedelta | None) -> datetime:
    """Where a range ending at the newest bar begins (exclusive): `span` before it, or (None) its New York day's
    midnight."""
    if span is not None:
        return newest - span
    return datetime.combine(newest.astimezone(NEW_YORK).date(), datetime.min.time(), NEW_YORK)


def read_bars(conn: psycopg.Connection, ticker: str, span: timedelta | None) -> list[tuple]:
    """A ticker's bars over `span` before its newest bar (None: that bar's New York day).

    The newest bar is found first, and the range passed to the bars query as constants: a bound the query
    computed itself would prune partitions only as it ran, after every partition of indicators was planned and
    locked (3,125 locks at a year of days, where this takes about 70: tests/integration/test_status_page_access.py).
    Never prepared: psycopg prepares a query it has run five times, and PostgreSQL may then plan it once for any
    bounds, which plans and locks every partition again."""
    newest = conn.execute(NEWEST_BAR_SQL, {"ticker": ticker}, prepare=False).fetchone()[0]
    if newest is None:
        return []
    return conn.execute(BARS_SQL, {"ticker": ticker, "limit": BARS_LIMIT, "since": bars_since(newest, span),
                                   "newest": newest, "until": newest + LAST_BAR_REACH}, prepare=False).fetchall()


def read_series(conn: psycopg.Connection, ticker: str, limit: int, now: datetime) -> list[tuple]:
    """A ticker's latest trades of the last SERIES_DAYS before `now` (and up to a day after it: a clock a little
    behind the exchange's), newest first; never prepared (read_bars). Bounded on both sides: the days made ahead
    hold nothing, and unbounded above they would be planned and locked too."""
    return conn.execute(SERIES_SQL, {"ticker": ticker, "limit": limit, "since": now - timedelta(days=SERIES_DAYS),
                                     "until": now + timedelta(days=1)}, prepare=False).fetchall()


def authorized(header: str | None, token: str | None) -> bool:
    """Whether a request's Authorization header carries the status page's token: `Bearer <token>`, or basic auth
    with the token as its password (any user name), compared in constant time. Without a token (STATUS_PAGE_TOKEN
    unset, so served on loopback only) every request is."""
    if token is None:
        return True
    scheme, _, offered = (header or "").strip().partition(" ")
    offered = offered.strip()
    if scheme.lower() == "basic":
        try:
            offered = base64.b64decode(offered, validate=True).decode().partition(":")[2]
        except ValueError:  # not base64 (binascii.Error), or not UTF-8 (UnicodeDecodeError)
            return False
    elif scheme.lower() != "bearer":
        return False
    return hmac.compare_digest(offered.encode(), token.encode())


class DatabaseReader:
    """The page's queries, over one connection kept open.

    After any database error the connection is dropped and the next request
    connects again; short timeouts keep an absent database from holding
    request threads. An outage is logged when it starts and when it ends,
    not at every request the page makes meanwhile.
    """

    def __init__(self, url: str):
        self.url = url
        self._lock = threading.Lock()
        self._connection: psycopg.Connection | None = None
        self._failing = False

    def run(self, work: Callable[[psycopg.Connection], list[tuple]]) -> list[tuple]:
        """`work`'s rows, over the kept connection."""
        with self._lock:
            try:
                if self._connection is None or self._connection.closed:
                    self._connection = open_connection(self.url, "streaming-status",
                                                       statement_timeout_ms=DB_TIMEOUT_S * 1000,
                                                       connect_timeout_s=DB_TIMEOUT_S)
                    # Partition bounds are read back from text: ISO reads back exactly, in any TimeZone.
                    self._connection.execute("SELECT set_config('datestyle', 'ISO', false)")
                rows = work(self._connection)
            except psycopg.Error as error:
                self._drop()
                if not self._failing:
                    log.warning("status page cannot read the database", extra={"reason": reason(error, self.url)})
                self._failing = True
                raise
            if self._failing:
                log.info("status page reads the database again")
            self._failing = False
            return rows

    def close(self) -> None:
        with self._lock:
            self._drop()

    def _drop(self) -> None:
        if self._connection is not None:
            self._connection.close()
            self._connection = None


class StatusServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, config: Config, stale_after_ns: int):
        super().__init__((config.metrics_http_host, config.metrics_http_port), Handler)
        self.snapshot = Snapshot()
        self.tickers = config.tickers
        self.stale_after_ns = stale_after_ns
        self.source = config.stream_source
        self.page = status_page.render(config.tickers, self.source)
        self.reader = DatabaseReader(config.database_url)
        self.token = config.status_page_token
        REDACT.add(self.token)
        self.registry = CollectorRegistry(auto_describe=False)
        self.registry.register(SnapshotCollector(lambda: self.snapshot, stale_after_ns, time.time_ns, self.source))
        self._slots = threading.BoundedSemaphore(MAX_IN_FLIGHT)
        self._thread = threading.Thread(target=self.serve_forever, name="status-http", daemon=True)

    def start(self) -> StatusServer:
        self._thread.start()
        return self

    def close(self) -> None:
        self.shutdown()
        self.server_close()
        self.reader.close()

    def process_request(self, request: socket.socket, client_address: tuple[str, int]) -> None:
        if not self._slots.acquire(blocking=False):
            try:
                request.sendall(_BUSY)
            except OSError:
                pass
            self.shutdown_request(request)
            return
        super().process_request(request, client_address)

    def process_request_thread(self, request: socket.socket, client_address: tuple[str, int]) -> None:
        try:
            super().process_request_thread(request, client_address)
        finally:
            self._slots.release()

    def handle_error(self, request: socket.socket, client_address: tuple[str, int]) -> None:
        """A client that went away mid-answer: a JSON log line, not socketserver's traceback on stderr."""
        log.info("status request not answered", extra={"reason": repr(sys.exc_info()[1])})

    def health(self) -> tuple[int, dict]:
        body = health(self.snapshot, ACTORS, time.time_ns(), self.stale_after_ns, self.source)
        return (200 if body["status"] == "ok" else 503), body

    def series(self, query: dict[str, list[str]]) -> tuple[int, dict]:
        """The latest trades of a ticker with their SMA9 and VWAP: (time ms, day volume, price, sma9, vwap),
        oldest first."""
        ticker, refused = self._ticker(query)
        if refused:
            return refused
        raw = query.get("limit", ["300"])[0]
        if not (raw.isascii() and raw.isdigit() and 1 <= int(raw) <= SERIES_LIMIT):
            return 400, {"error": f"limit must be a whole number from 1 to {SERIES_LIMIT}"}
        try:
            rows = self.reader.run(lambda conn: read_series(conn, ticker, int(raw), datetime.now(UTC)))
        except psycopg.Error:
            return 503, {"error": "database unavailable"}
        return 200, {"ticker": ticker, "points": rows[::-1]}

    def bars(self, query: dict[str, list[str]]) -> tuple[int, dict]:
        """A ticker's stored bars over a range: (start ms, open, high, low, close, volume, source, sma9, vwap)."""
        ticker, refused = self._ticker(query)
        if refused:
            return refused
        chosen = query.get("range", ["15m"])[0]
        if chosen not in BAR_RANGES:
            return 400, {"error": f"range must be one of {', '.join(BAR_RANGES)}"}
        try:
            rows = self.reader.run(lambda conn: read_bars(conn, ticker, BAR_RANGES[chosen]))
        except psycopg.Error:
            return 503, {"error": "database unavailable"}
        return 200, {"ticker": ticker, "range": chosen, "bars": rows}

    def _ticker(self, query: dict[str, list[str]]) -> tuple[str, tuple[int, dict] | None]:
        ticker = query.get("ticker", [self.tickers[0]])[0].upper()
        if ticker not in self.tickers:
            return ticker, (404, {"error": f"{ticker} is not streamed (configured: {', '.join(self.tickers)})"})
        return ticker, None


class Handler(BaseHTTPRequestHandler):
    server: StatusServer
    timeout = CLIENT_TIMEOUT

    def do_GET(self) -> None:
        url = urlsplit(self.path)
        if url.path not in OPEN_PATHS and not authorized(self.headers.get("Authorization"), self.server.token):
            self._send(401, _JSON, _UNAUTHORIZED, {"WWW-Authenticate": _CHALLENGE})
            return
        try:
            status, content_type, body = self._answer(url.path, url.query)
        except Exception:
            log.exception("status request failed", extra={"path": url.path})
            status, content_type, body = 500, _JSON, msgspec.json.encode({"error": "internal error"})
        self._send(status, content_type, body)

    def _answer(self, path: str, query: str) -> tuple[int, str, bytes]:
        if path == "/metrics":
            return 200, CONTENT_TYPE_LATEST, generate_latest(self.server.registry)
        if path == "/":
            return 200, "text/html; charset=utf-8", self.server.page
        if path == "/healthz":
            status, body = self.server.health()
        elif path == "/api/series":
            status, body = self.server.series(parse_qs(query))
        elif path == "/api/bars":
            status, body = self.server.bars(parse_qs(query))
        else:
            status, body = 404, {"error": "not found"}
        return status, _JSON, msgspec.json.encode(body)

    def _send(self, status: int, content_type: str, body: bytes, headers: dict[str, str] | None = None) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", "no-store")
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        """Requests are not logged: the page alone asks twice a second."""
