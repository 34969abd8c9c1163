"""The metrics actor's HTTP side: /metrics, /healthz, the status page and its data.

The page's data: `/api/series?ticker=&limit=` (the latest trades with their
SMA9 and VWAP) and `/api/bars?ticker=&range=` (the stored one-minute bars of
the last 15 minutes, hour or session before a ticker's newest bar, each with
SMA9 and VWAP as of its close, and where it came from). Every parameter is
checked, and a bad one answered 400 naming what is accepted.

It serves from a background thread. The actor loop stays the owner of the
state: it replaces `StatusServer.snapshot` with a new immutable `Snapshot`
(one reference assignment), which request threads only read.

Overflow policy: each request gets its own thread, at most MAX_IN_FLIGHT at
once; one more is answered 503 at once and closed. Beyond that the kernel's
listen backlog (`request_queue_size`) holds connections, then refuses them.
A client silent for CLIENT_TIMEOUT is dropped, so none holds a thread long.
"""

from __future__ import annotations

import logging
import socket
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

import msgspec
import psycopg
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest

from common.config import ACTORS, Config
from common.observe import status_page
from common.observe.exposition import Snapshot, SnapshotCollector, health
from common.store.connection import open_connection, reason

log = logging.getLogger("metrics.http")

MAX_IN_FLIGHT = 8
CLIENT_TIMEOUT = 10.0
#: Longest a request waits for the database (connect, then each query).
DB_TIMEOUT_S = 3
SERIES_LIMIT = 2000
_JSON = "application/json"
_BUSY = b"HTTP/1.0 503 Service Unavailable\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"

# A trade's indicators are stored with it, under the same key; the join
# leaves out the few newest trades whose indicators are still on their way.
SERIES_SQL = """
SELECT (extract(epoch FROM i.timestamp) * 1000)::bigint, i.day_volume, e.price::float8, i.sma9::float8, i.vwap::float8
FROM public.indicators i
JOIN public.equity_data e USING (ticker, timestamp, day_volume)
WHERE i.ticker = %s
ORDER BY i.timestamp DESC, i.day_volume DESC
LIMIT %s
"""


#: The bars' ranges the page offers: an interval before the ticker's newest bar, or its whole New York day.
BAR_RANGES = {"15m": "15 minutes", "1h": "1 hour", "session": None}
BARS_LIMIT = 1500
# Each bar with the indicator values of the last trade inside it: a bar runs to the next stored bar's
# start (the last one as long as the one before it, or a minute).
BARS_SQL = """
WITH newest AS (SELECT max(timestamp) AS at FROM public.equity_bars WHERE ticker = %(ticker)s),
since AS (
    SELECT CASE WHEN %(span)s::interval IS NULL
                THEN date_trunc('day', newest.at AT TIME ZONE 'America/New_York') AT TIME ZONE 'America/New_York'
                ELSE newest.at - %(span)s::interval END AS at
    FROM newest
), bars AS (
    SELECT b.timestamp AS start, b.open, b.high, b.low, b.close, b.volume, b.source,
           lead(b.timestamp) OVER w AS next_start, b.timestamp - lag(b.timestamp) OVER w AS length
    FROM public.equity_bars b, since
    WHERE b.ticker = %(ticker)s AND b.timestamp > since.at
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
    ORDER BY timestamp DESC, day_volume DESC
    LIMIT 1
) i ON true
ORDER BY bars.start
"""


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

    def read(self, sql: str, params: tuple | dict) -> list[tuple]:
        with self._lock:
            try:
                if self._connection is None or self._connection.closed:
                    self._connection = open_connection(self.url, "streaming-status",
                                                       statement_timeout_ms=DB_TIMEOUT_S * 1000,
                                                       connect_timeout_s=DB_TIMEOUT_S)
                rows = self._connection.execute(sql, params).fetchall()
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
            rows = self.reader.read(SERIES_SQL, (ticker, int(raw)))
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
            rows = self.reader.read(BARS_SQL, {"ticker": ticker, "span": BAR_RANGES[chosen], "limit": BARS_LIMIT})
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

    def _send(self, status: int, content_type: str, body: bytes) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", "no-store")
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        """Requests are not logged: the page alone asks twice a second."""
