"""The metrics actor's HTTP side: /metrics, /healthz, the status page and its data.

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


class SeriesReader:
    """The latest trades of a ticker with their SMA9 and VWAP, over one connection kept open.

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

    def read(self, ticker: str, limit: int) -> list[tuple]:
        """(time ms, day volume, price, sma9, vwap) rows, oldest first."""
        with self._lock:
            try:
                if self._connection is None or self._connection.closed:
                    self._connection = open_connection(self.url, "streaming-status",
                                                       statement_timeout_ms=DB_TIMEOUT_S * 1000,
                                                       connect_timeout_s=DB_TIMEOUT_S)
                rows = self._connection.execute(SERIES_SQL, (ticker, limit)).fetchall()
            except psycopg.Error as error:
                self._drop()
                if not self._failing:
                    log.warning("status page cannot read the database", extra={"reason": reason(error, self.url)})
                self._failing = True
                raise
            if self._failing:
                log.info("status page reads the database again")
            self._failing = False
            return rows[::-1]

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
        self.reader = SeriesReader(config.database_url)
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
        ticker = query.get("ticker", [self.tickers[0]])[0].upper()
        if ticker not in self.tickers:
            return 404, {"error": f"{ticker} is not streamed (configured: {', '.join(self.tickers)})"}
        raw = query.get("limit", ["300"])[0]
        if not (raw.isascii() and raw.isdigit() and 1 <= int(raw) <= SERIES_LIMIT):
            return 400, {"error": f"limit must be a whole number from 1 to {SERIES_LIMIT}"}
        try:
            rows = self.reader.read(ticker, int(raw))
        except psycopg.Error:
            return 503, {"error": "database unavailable"}
        return 200, {"ticker": ticker, "points": rows}


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
