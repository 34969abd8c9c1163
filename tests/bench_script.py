"""The same work as the five actors, in one plain process: `make bench`'s baseline.

    python -m tests.bench_script      # settings from the environment, as an actor reads them

What the pipeline stores, this stores too, from the same real schwab-py
client logged in the same way (`common/feed/schwab_client.py`, so against the
simulator without Schwab credentials):

- LEVELONE_EQUITIES and CHART_EQUITY for STREAM_TICKERS, with ingest's fields;
  level-one updates merged per key, and a trade wherever TOTAL_VOLUME grew
  (its size the growth, the first snapshot of a key not a trade), as
  `common/feed/levelone.py` derives them: rows of `equity_data`.
- SMA9 and session VWAP per trade, inline, with the indicator actor's
  per-symbol state and session clock: rows of `indicators`.
- LEVELONE_OPTIONS for the contracts the options actor would choose: each
  ticker's chain read over REST, `common/option_chain.select_contracts` at
  OPTION_STRIKE_BAND, the union capped at STREAM_MAX_KEYS as ingest caps it,
  chosen again when the underlying moves past OPTION_RECENTER_THRESHOLD or
  every OPTION_CHAIN_REFRESH; each update merged per contract and made a
  complete row, greeks Schwab could not compute filled from Black-Scholes at
  its IV as `common/option_chain.option_row` fills them: rows of `option_prices`.

It depends on the hot path only through `common/store/db.py` (its row columns
are checked at start), the per-symbol indicators and session clock of
`common/analytics/indicators.py`, and the chain selection of `common/analytics/option_chain.py`,
so the actors can change under it while it stays the same baseline.
- Every BATCH_INTERVAL (25 ms) whatever has accumulated is COPYed and stored
  in one transaction with `common/db.write_batches`, into the database at
  DATABASE_URL (or the embedded one under STREAMING_VAR), migrated as the
  pipeline's is.

No bus, no journal, no metrics, no reconnects: what is left is the work
itself. On SIGTERM it logs out (handling everything sent before the logout
was answered), writes what it holds and exits 0. It logs JSON lines on
stdout; `streaming` says the option contracts are subscribed.
"""

from __future__ import annotations

import asyncio
import datetime
import json
import math
import signal
import sys
import time
from typing import Any

import httpx
import msgspec
import psycopg
from authlib.integrations.base_client.errors import OAuthError
from schwab.contrib.util import StreamJsonDecoder
from schwab.streaming import StreamClient, UnexpectedResponse
from websockets.exceptions import ConnectionClosed

from actors.options import CHAIN_STRIKES
from common import config as configuration
from common.analytics.greeks import black_scholes
from common.analytics.indicators import SessionClock, SymbolIndicators
from common.analytics.option_chain import (
    NEW_YORK,
    RISK_FREE_RATE,
    decode_chain,
    expiry_ms,
    off_centre,
    select_contracts,
)
from common.feed.schwab_client import make_client, make_stream_client
from common.store import db

_EQ = StreamClient.LevelOneEquityFields
_OPT = StreamClient.LevelOneOptionFields
#: ingest's fields: the same to send, parse and merge.
EQUITY_FIELDS = [
    _EQ.SYMBOL, _EQ.BID_PRICE, _EQ.ASK_PRICE, _EQ.LAST_PRICE, _EQ.BID_SIZE, _EQ.ASK_SIZE,
    _EQ.TOTAL_VOLUME, _EQ.LAST_SIZE, _EQ.QUOTE_TIME_MILLIS, _EQ.TRADE_TIME_MILLIS,
]
OPTION_FIELDS = [
    _OPT.SYMBOL, _OPT.BID_PRICE, _OPT.ASK_PRICE, _OPT.LAST_PRICE, _OPT.TOTAL_VOLUME,
    _OPT.OPEN_INTEREST, _OPT.VOLATILITY, _OPT.EXPIRATION_YEAR, _OPT.STRIKE_TYPE,
    _OPT.CONTRACT_TYPE, _OPT.UNDERLYING, _OPT.EXPIRATION_MONTH, _OPT.EXPIRATION_DAY,
    _OPT.DELTA, _OPT.GAMMA, _OPT.THETA, _OPT.VEGA, _OPT.RHO, _OPT.UNDERLYING_PRICE,
    _OPT.MARK, _OPT.QUOTE_TIME_MILLIS,
]
#: The row columns the rows below are built in, checked against common/store/db.py at start.
COLUMNS = {
    "equity_data": ("symbol", "trade_time_ms", "price", "size", "day_volume", "last_size", "bid", "ask",
                    "received_ns", "contract"),
    "indicators": ("symbol", "trade_time_ms", "day_volume", "price", "sma9", "vwap", "received_ns"),
    "option_prices": ("ticker", "option_symbol", "quote_time_ms", "option_type", "strike_price", "expiration_date",
                      "last_price", "bid", "ask", "mark", "volume", "open_interest", "delta", "gamma", "theta",
                      "vega", "rho", "implied_volatility", "underlying_price", "greeks_source", "received_ns",
                      "indicative_bid", "indicative_ask", "indicative_time_ms"),
}
#: Schwab's placeholder for a price or greek it does not have.
NOT_A_NUMBER = -999.0
_YEAR_MS = 365.0 * 24 * 3600 * 1000
#: A row its table will never take: left out, the rest of its batch stored.
REFUSED = (psycopg.errors.DataError, psycopg.errors.IntegrityError)
#: A chain that could not be read is read again after this, doubling up to CHAIN_RETRY_MAX.
CHAIN_RETRY, CHAIN_RETRY_MAX = 1.0, 30.0


def log(event: str, **fields: Any) -> None:
    print(json.dumps({"ts": time.time(), "event": event, **fields}), flush=True)


def price(value: Any) -> float | None:
    """A price, or None where there is none: Schwab's 0 is "no quote" and -999 "not computed"."""
    if value is None:
        return None
    value = float(value)
    return value if value > 0 else None


def computed(value: Any) -> float | None:
    """A greek or a volatility, or None where Schwab sent -999 (not computed)."""
    if value is None:
        return None
    value = float(value)
    return None if value == NOT_A_NUMBER else value


class Decoder(StreamJsonDecoder):
    """msgspec's JSON decoder (ingest decodes with msgspec too), without ingest's checks."""

    def decode_json_string(self, raw: str | bytes) -> dict[str, Any]:
        try:
            return msgspec.json.decode(raw)
        except msgspec.DecodeError as error:
            text = raw if isinstance(raw, str) else raw.decode(errors="replace")
            raise json.JSONDecodeError(str(error), text, 0) from None


class Work:
    """Handlers in, rows out: every stored row is built here and waits in `rows` for the next COPY."""

    def __init__(self) -> None:
        self.equities: dict[str, dict[str, Any]] = {}
        self.options: dict[str, dict[str, Any]] = {}
        self.terms: dict[str, tuple[str, str, float, str, int]] = {}
        self.indicators: dict[str, SymbolIndicators] = {}
        self.clock = SessionClock()
        self.rows: dict[str, list[tuple]] = {"equity_data": [], "indicators": [], "option_prices": []}
        self.spots: dict[str, float] = {}
        self.errors = 0

    def state(self, symbol: str) -> SymbolIndicators:
        state = self.indicators.get(symbol)
        if state is None:
            state = self.indicators[symbol] = SymbolIndicators()
        return state

    def on_equities(self, message: dict[str, Any]) -> None:
        received = time.time_ns()
        trades, values = self.rows["equity_data"], self.rows["indicators"]
        for item in message["content"]:
            key = item.get("key")
            merged = self.equities.get(key)
            if merged is None:  # the first snapshot: state, not a trade
                self.equities[key] = dict(item)
                continue
            before = merged.get("TOTAL_VOLUME")
            merged.update(item)
            if "TOTAL_VOLUME" not in item:
                continue
            day_volume = int(item["TOTAL_VOLUME"])
            size = day_volume - before if before is not None and day_volume >= before else day_volume
            if size <= 0:
                continue
            trade_time, last = merged.get("TRADE_TIME_MILLIS"), price(merged.get("LAST_PRICE"))
            if trade_time is None or last is None or not math.isfinite(last):
                self.errors += 1
                continue
            trade_time = int(trade_time)
            trades.append((key, trade_time, last, size, day_volume, int(merged.get("LAST_SIZE") or 0),
                           price(merged.get("BID_PRICE")), price(merged.get("ASK_PRICE")), received, None))
            state = self.state(key)
            vwap = state.vwap(self.clock.anchor(trade_time), last, size)
            if vwap is not None:
                values.append((key, trade_time, day_volume, last, state.sma9(last), vwap, received))

    def on_chart(self, message: dict[str, Any]) -> None:
        for item in message["content"]:
            close = float(item["CLOSE_PRICE"])
            if math.isfinite(close):
                state = self.state(item["key"])
                state.push_close(int(item["CHART_TIME_MILLIS"]), close)

    def on_options(self, message: dict[str, Any]) -> None:
        """Each update merged into its contract's state, and the complete row it makes (as the writer makes it)."""
        received = time.time_ns()
        rows = self.rows["option_prices"]
        for item in message["content"]:
            key = item.get("key")
            merged = self.options.get(key)
            if merged is None:
                merged = self.options[key] = dict(item)
            else:
                merged.update(item)
            terms = self.terms.get(key) or self.contract(key, merged)
            quote_time = merged.get("QUOTE_TIME_MILLIS")
            if terms is None or quote_time is None:
                self.errors += 1
                continue
            underlying, kind, strike, expiration, expires_ms = terms
            quote_time = int(quote_time)
            greeks = [computed(merged.get(name)) for name in ("DELTA", "GAMMA", "THETA", "VEGA", "RHO")]
            volatility = computed(merged.get("VOLATILITY"))
            iv = volatility / 100.0 if volatility and volatility > 0 else None
            spot = price(merged.get("UNDERLYING_PRICE"))
            source = "schwab"
            if None in greeks and iv and spot:  # Schwab could not compute them: Black-Scholes at its own IV
                years = max(expires_ms - quote_time, 60_000) / _YEAR_MS
                model = black_scholes(spot, strike, years, RISK_FREE_RATE, iv, kind == "C")
                greeks, source = [model.delta, model.gamma, model.theta, model.vega, model.rho], "model"
            if spot:
                self.spots[underlying] = spot
            rows.append((underlying, key, quote_time, kind, strike, expiration, price(merged.get("LAST_PRICE")),
                         price(merged.get("BID_PRICE")), price(merged.get("ASK_PRICE")), price(merged.get("MARK")),
                         int(merged.get("TOTAL_VOLUME") or 0), int(merged.get("OPEN_INTEREST") or 0), *greeks, iv,
                         spot, source, received, None, None, None))

    def contract(self, key: str, merged: dict[str, Any]) -> tuple[str, str, float, str, int] | None:
        """A contract's terms, once its state holds them all (they never change)."""
        try:
            kind = merged["CONTRACT_TYPE"]
            expiration = datetime.date(int(merged["EXPIRATION_YEAR"]), int(merged["EXPIRATION_MONTH"]),
                                       int(merged["EXPIRATION_DAY"])).isoformat()
            terms = (str(merged["UNDERLYING"]), kind, float(merged["STRIKE_TYPE"]), expiration, expiry_ms(expiration))
        except (KeyError, TypeError, ValueError):
            return None
        if kind not in ("C", "P"):
            return None
        self.terms[key] = terms
        return terms

    def take(self) -> dict[str, list[tuple]]:
        rows, self.rows = self.rows, {"equity_data": [], "indicators": [], "option_prices": []}
        return rows


class Contracts:
    """The option contracts wanted per ticker, and ingest's way of moving the stream to their union."""

    def __init__(self, config: configuration.Config, client: Any, work: Work):
        self.config = config
        self.client = client
        self.work = work
        self.wishes: dict[str, frozenset[str]] = {}
        self.centres: dict[str, float] = {}
        self.due = dict.fromkeys(config.tickers, 0.0)
        self.retry = dict.fromkeys(config.tickers, CHAIN_RETRY)
        self.reading: set[str] = set()
        self.streaming: frozenset[str] = frozenset()
        self.refused: frozenset[str] | None = None
        self.changed = False

    async def read_chain(self, ticker: str) -> None:
        """Choose `ticker`'s band as the options actor does; when the chain cannot be read, retry soon."""
        today = datetime.datetime.now(NEW_YORK).date()
        now = time.monotonic()
        try:
            response = await self.client.get_option_chain(ticker, strike_count=CHAIN_STRIKES, from_date=today,
                                                           to_date=today + datetime.timedelta(days=10))
            response.raise_for_status()
            centre, contracts = select_contracts(decode_chain(response.content), self.config.option_strike_band, today)
        except (ValueError, KeyError, httpx.HTTPError, OAuthError) as error:  # ChainError is a ValueError
            self.work.errors += 1
            log("no option contracts chosen", ticker=ticker, reason=str(error) or repr(error))
            self.centres.pop(ticker, None)
            self.due[ticker] = now + self.retry[ticker]
            self.retry[ticker] = min(self.retry[ticker] * 2, CHAIN_RETRY_MAX)
            return
        finally:
            self.reading.discard(ticker)
        self.retry[ticker] = CHAIN_RETRY
        self.centres[ticker] = centre
        self.work.spots.pop(ticker, None)  # a move is measured only by quotes newer than the band
        self.due[ticker] = now + self.config.option_chain_refresh
        if self.wishes.get(ticker) != frozenset(contracts):
            self.wishes[ticker] = frozenset(contracts)
            self.changed = True

    def read_due(self) -> None:
        """Start reading the chains that are due, or whose underlying moved off its band's centre."""
        now = time.monotonic()
        moved = off_centre(self.centres, self.work.spots, self.config.option_recenter_threshold)
        for ticker in {*moved, *(ticker for ticker, due in self.due.items() if now >= due)}:
            if ticker not in self.reading:
                self.reading.add(ticker)
                self.due[ticker] = math.inf
                asyncio.get_running_loop().create_task(self.read_chain(ticker))

    async def apply(self, stream: Any) -> None:
        """UNSUBS what left the wanted set, ADD what entered it, never more than STREAM_MAX_KEYS (as ingest)."""
        self.changed = False
        target = frozenset().union(*self.wishes.values())
        if target == self.refused:
            return
        to_add, to_remove = sorted(target - self.streaming), sorted(self.streaming - target)
        excess = len(self.streaming) - len(to_remove) + len(to_add) - self.config.stream_max_keys
        if excess > 0:
            to_add = to_add[:len(to_add) - excess]
            self.refused = target
        if to_remove:
            await stream.level_one_option_unsubs(to_remove)
            self.streaming -= set(to_remove)
        if to_add:
            subscribe = stream.level_one_option_add if self.streaming else stream.level_one_option_subs
            await subscribe(to_add, fields=list(OPTION_FIELDS))
            self.streaming |= set(to_add)
        if to_add or to_remove:
            log("option contracts changed", added=len(to_add), removed=len(to_remove), streaming=len(self.streaming),
                wanted=len(target))


async def run() -> None:
    config = configuration.load()
    for table, columns in COLUMNS.items():
        fields = tuple(field for field, _ in db.TABLES[table].fields)
        if fields != columns:
            raise SystemExit(f"common/store/db.py takes {table} rows as {fields}; this script builds {columns}")
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    work = Work()
    client = make_client(config, asyncio=True)
    contracts = Contracts(config, client, work)
    conn = db.connect(config.database_url, application_name="bench-script")
    stored = {"equity_data": 0, "indicators": 0, "option_prices": 0}
    refused: dict[str, int] = {}

    # Every chain first, as the options actor reads them all before its first wish.
    for ticker in config.tickers:
        if stop.is_set():
            conn.close()
            return
        contracts.reading.add(ticker)
        await contracts.read_chain(ticker)

    stream = make_stream_client(client)
    stream.set_json_decoder(Decoder())
    stream.add_level_one_equity_handler(work.on_equities)
    stream.add_chart_equity_handler(work.on_chart)
    stream.add_level_one_option_handler(work.on_options)
    tickers = list(config.tickers)
    await stream.login()
    await stream.level_one_equity_subs(tickers, fields=list(EQUITY_FIELDS))
    await stream.chart_equity_subs(tickers)
    await contracts.apply(stream)
    log("streaming", tickers=len(tickers), option_contracts=len(contracts.streaming))

    def write(rows: list[tuple[str, tuple]]) -> None:
        """COPY and store `rows` in one transaction; a row its table refuses is left out (halving, as the writer does)."""
        batches: dict[str, list[tuple]] = {}
        for table, row in rows:
            batches.setdefault(table, []).append(row)
        try:
            inserted = db.write_batches(conn, batches)
        except REFUSED as error:
            if len(rows) == 1:
                work.errors += 1
                refused[type(error).__name__] = refused.get(type(error).__name__, 0) + 1
                return
            write(rows[:len(rows) // 2])
            write(rows[len(rows) // 2:])
            return
        for table, count in inserted.items():
            stored[table] += count

    def flush() -> None:
        rows = work.take()
        if any(rows.values()):
            write([(table, row) for table, batch in rows.items() for row in batch])

    async def every_batch_interval() -> None:
        next_at = loop.time()
        while True:
            next_at = max(next_at + config.batch_interval, loop.time() - 1.0)
            await asyncio.sleep(next_at - loop.time())
            flush()
            contracts.read_due()

    flusher = loop.create_task(every_batch_interval())
    try:
        while not stop.is_set():
            await stream.handle_message()
            if flusher.done():
                flusher.result()  # a failed COPY ends the run
            if contracts.changed:
                await contracts.apply(stream)
        # Log out; what Schwab sent before answering waits in schwab-py's queue and is handled too.
        try:
            await asyncio.wait_for(stream.logout(), config.stream_command_timeout)
        except (TimeoutError, ConnectionClosed):
            pass
        while True:
            try:
                await asyncio.wait_for(stream.handle_message(), 2.0)
            except UnexpectedResponse:
                continue
            except (ConnectionClosed, TimeoutError):
                break
    finally:
        flusher.cancel()
        await asyncio.gather(flusher, return_exceptions=True)
    flush()
    conn.close()
    log("stopped", stored=stored, refused=refused, errors=work.errors, option_contracts=len(contracts.streaming))


def main() -> None:
    try:
        asyncio.run(run())
    except Exception as error:
        log("failed", reason=repr(error))
        raise
    sys.exit(0)


if __name__ == "__main__":
    main()
