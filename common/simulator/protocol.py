"""Schwab streamer frames, built the way schwab-py reads them (pure).

Field numbers come from schwab-py's own enums. A `Session` is one streamer
connection's protocol state: login, the subscribed keys and fields per
service, and what was last sent for each key, so that the first item for a
key is a full snapshot and every later one carries only what changed.

Value types follow the captured frames: Schwab writes a double that happens
to be whole without its fraction (`"20": 70`), so `wire` does the same; the
Python type in `equity_values`/`option_values` is the field's declared type.
CHART_EQUITY volume is the exception and is always written as a double.

Every update the simulator sends passes through here, so field numbers are
looked up once (as strings, in `_EQ`, `_OPT`, `_CHART`), a contract's fixed
fields are worked out once, and frames are encoded by msgspec (`encode`):
the same JSON values as `json.dumps` (a float may be spelled differently,
`0.00002799` for `2.799e-05`, and reads back the same).
"""

from __future__ import annotations

import functools
import operator
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta, timezone
from enum import Enum
from typing import Any

import msgspec
from schwab.streaming import StreamClient

from common.feed import option_symbols
from common.feed.market_hours import SCHWAB_SESSIONS, exchange_sessions
from common.feed.option_symbols import OptionContract
from common.simulator.market import Bar, SimulatedEquity, SimulatedOption

EQUITY = StreamClient.LevelOneEquityFields
OPTION = StreamClient.LevelOneOptionFields
CHART = StreamClient.ChartEquityFields
LEVELONE_EQUITIES = "LEVELONE_EQUITIES"
LEVELONE_OPTIONS = "LEVELONE_OPTIONS"
CHART_EQUITY = "CHART_EQUITY"
SERVICES = {LEVELONE_EQUITIES: EQUITY, LEVELONE_OPTIONS: OPTION, CHART_EQUITY: CHART}
MAX_KEYS = 500
CUSTOMER_ID = "sim-customer-0001"

SUCCESS = 0
LOGIN_DENIED = 3
SERVICE_NOT_AVAILABLE = 11
CONNECTION_LIMIT = 12
SYMBOL_LIMIT = 19
NOT_LOGGED_IN = 20
BAD_COMMAND = 22
STOP_STREAMING = 30

_DAY_MS = 86_400_000


def _numbers(fields: type[Enum]) -> Any:
    """A schwab-py field enum's numbers as the strings frames carry them, by name: `_EQ.BID_PRICE == "1"`."""
    return type(f"{fields.__name__}Numbers", (), {f.name: str(f.value) for f in fields})


_EQ, _OPT, _CHART = _numbers(EQUITY), _numbers(OPTION), _numbers(CHART)
_TOTAL_VOLUME = _EQ.TOTAL_VOLUME
_encoder = msgspec.json.Encoder()


def encode(frame: dict) -> bytes:
    """A frame as the UTF-8 JSON text sent on the socket (event loop thread only: the encoder is shared)."""
    return _encoder.encode(frame)


def wire(value: Any) -> Any:
    """A value as Schwab writes it: whole doubles lose their fraction."""
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


_read = operator.attrgetter


def _constant(value: Any) -> Callable[[Any], Any]:
    return lambda quote: value


def _net_change(name: str) -> Callable[[Any], float]:
    """The change of attribute `name` since the close."""
    read = _read(name)
    return lambda quote: round(read(quote) - quote.close, 4)


def _percent_change(name: str) -> Callable[[Any], float]:
    """The change of attribute `name` since the close, in percent of the close."""
    read = _read(name)

    def percent(quote: Any) -> float:
        return round(100 * round(read(quote) - quote.close, 4) / quote.close, 8) if quote.close else 0.0
    return percent


#: How to read each LEVELONE_EQUITIES field from a quote, by field number. A session reads only the
#: fields it subscribed (the ingest actor asks for 9 of 51), once per update sent.
_EQUITY_READERS: dict[str, Callable[[SimulatedEquity], Any]] = {
    _EQ.BID_PRICE: _read("bid"),
    _EQ.ASK_PRICE: _read("ask"),
    _EQ.LAST_PRICE: _read("last"),
    _EQ.BID_SIZE: _read("bid_size"),
    _EQ.ASK_SIZE: _read("ask_size"),
    _EQ.ASK_ID: _constant("Q"),
    _EQ.BID_ID: _constant("Q"),
    _EQ.TOTAL_VOLUME: _read("total_volume"),
    _EQ.LAST_SIZE: _read("last_size"),
    _EQ.HIGH_PRICE: _read("high"),
    _EQ.LOW_PRICE: _read("low"),
    _EQ.CLOSE_PRICE: _read("close"),
    _EQ.EXCHANGE_ID: _constant("Q"),
    _EQ.MARGINABLE: _constant(True),
    _EQ.DESCRIPTION: _read("description"),
    _EQ.LAST_ID: _constant("Q"),
    _EQ.OPEN_PRICE: _read("open"),
    _EQ.NET_CHANGE: _net_change("last"),
    _EQ.HIGH_PRICE_52_WEEK: lambda q: round(q.close * 1.25, 2),
    _EQ.LOW_PRICE_52_WEEK: lambda q: round(q.close * 0.75, 2),
    _EQ.PE_RATIO: _constant(25.5),
    _EQ.DIVIDEND_AMOUNT: _constant(1.5),
    _EQ.DIVIDEND_YIELD: _constant(0.75),
    _EQ.NAV: _constant(0.0),
    _EQ.EXCHANGE_NAME: _constant("NASDAQ"),
    _EQ.DIVIDEND_DATE: _constant("2025-12-15 00:00:00.0"),
    _EQ.REGULAR_MARKET_QUOTE: _constant(True),
    _EQ.REGULAR_MARKET_TRADE: _constant(True),
    _EQ.REGULAR_MARKET_LAST_PRICE: _read("last"),
    _EQ.REGULAR_MARKET_LAST_SIZE: _read("last_size"),
    _EQ.REGULAR_MARKET_NET_CHANGE: _net_change("last"),
    _EQ.SECURITY_STATUS: _constant("Normal"),
    _EQ.MARK: _read("mark"),
    _EQ.QUOTE_TIME_MILLIS: _read("quote_time_ms"),
    _EQ.TRADE_TIME_MILLIS: _read("trade_time_ms"),
    _EQ.REGULAR_MARKET_TRADE_MILLIS: _read("trade_time_ms"),
    _EQ.BID_TIME_MILLIS: _read("quote_time_ms"),
    _EQ.ASK_TIME_MILLIS: _read("quote_time_ms"),
    _EQ.ASK_MIC_ID: _constant("XNAS"),
    _EQ.BID_MIC_ID: _constant("XNAS"),
    _EQ.LAST_MIC_ID: _constant("XNAS"),
    _EQ.NET_CHANGE_PERCENT: _percent_change("last"),
    _EQ.REGULAR_MARKET_CHANGE_PERCENT: _percent_change("last"),
    _EQ.MARK_CHANGE: _net_change("mark"),
    _EQ.MARK_CHANGE_PERCENT: _percent_change("mark"),
    _EQ.HTB_QUANTITY: _constant(50_000_000),
    _EQ.HTB_RATE: _constant(0.0),
    _EQ.HARD_TO_BORROW: _constant(0),
    _EQ.IS_SHORTABLE: _constant(1),
    _EQ.POST_MARKET_NET_CHANGE: _constant(0.0),
    _EQ.POST_MARKET_NET_CHANGE_PERCENT: _constant(0.0),
}


def equity_values(q: SimulatedEquity) -> dict[str, Any]:
    """Every LEVELONE_EQUITIES field of a quote, by field number."""
    return {number: read(q) for number, read in _EQUITY_READERS.items()}


@functools.lru_cache(maxsize=8192)  # a day's listings several times over; each entry is a few hundred bytes
def _contract_facts(c: OptionContract) -> dict[str, Any]:
    """The LEVELONE_OPTIONS fields a contract fixes that take work to write: worked out once per contract."""
    last_day = datetime(c.expiration.year, c.expiration.month, c.expiration.day, tzinfo=timezone.utc) + timedelta(days=1)
    return {
        _OPT.DESCRIPTION: option_symbols.description(c),
        _OPT.DELIVERABLES: f"100 {c.underlying}",
        _OPT.UV_EXPIRATION_TYPE: "S" if c.expiration.weekday() == 4 else "W",
        _OPT.LAST_TRADING_DAY: int(last_day.timestamp() * 1000),
    }


def _fact(number: str) -> Callable[[SimulatedOption], Any]:
    return lambda quote: _contract_facts(quote.contract)[number]


def _intrinsic(q: SimulatedOption) -> float:
    c = q.contract
    return round(q.underlying_price - c.strike if c.put_call == "C" else c.strike - q.underlying_price, 4)


#: How to read each LEVELONE_OPTIONS field from a quote, by field number (see `_EQUITY_READERS`).
_OPTION_READERS: dict[str, Callable[[SimulatedOption], Any]] = {
    _OPT.DESCRIPTION: _fact(_OPT.DESCRIPTION),
    _OPT.BID_PRICE: _read("bid"),
    _OPT.ASK_PRICE: _read("ask"),
    _OPT.LAST_PRICE: _read("last"),
    _OPT.HIGH_PRICE: _read("high"),
    _OPT.LOW_PRICE: _read("low"),
    _OPT.CLOSE_PRICE: _read("close"),
    _OPT.TOTAL_VOLUME: _read("total_volume"),
    _OPT.OPEN_INTEREST: _read("open_interest"),
    _OPT.VOLATILITY: _read("volatility"),
    _OPT.MONEY_INTRINSIC_VALUE: _intrinsic,
    _OPT.EXPIRATION_YEAR: _read("contract.expiration.year"),
    _OPT.MULTIPLIER: _constant(100),
    _OPT.DIGITS: _constant(2),
    _OPT.OPEN_PRICE: _read("open"),
    _OPT.BID_SIZE: _read("bid_size"),
    _OPT.ASK_SIZE: _read("ask_size"),
    _OPT.LAST_SIZE: _read("last_size"),
    _OPT.NET_CHANGE: _net_change("last"),
    _OPT.STRIKE_TYPE: _read("contract.strike"),
    _OPT.CONTRACT_TYPE: _read("contract.put_call"),
    _OPT.UNDERLYING: _read("contract.underlying"),
    _OPT.EXPIRATION_MONTH: _read("contract.expiration.month"),
    _OPT.DELIVERABLES: _fact(_OPT.DELIVERABLES),
    _OPT.TIME_VALUE: lambda q: round(q.mark - max(_intrinsic(q), 0.0), 4),
    _OPT.EXPIRATION_DAY: _read("contract.expiration.day"),
    _OPT.DAYS_TO_EXPIRATION: _read("days_to_expiration"),
    _OPT.DELTA: _read("delta"),
    _OPT.GAMMA: _read("gamma"),
    _OPT.THETA: _read("theta"),
    _OPT.VEGA: _read("vega"),
    _OPT.RHO: _read("rho"),
    _OPT.SECURITY_STATUS: _constant("Normal"),
    _OPT.THEORETICAL_OPTION_VALUE: _read("theoretical"),
    _OPT.UNDERLYING_PRICE: _read("underlying_price"),
    _OPT.UV_EXPIRATION_TYPE: _fact(_OPT.UV_EXPIRATION_TYPE),
    _OPT.MARK: _read("mark"),
    _OPT.QUOTE_TIME_MILLIS: _read("quote_time_ms"),
    _OPT.TRADE_TIME_MILLIS: _read("trade_time_ms"),
    _OPT.EXCHANGE_ID: _constant("O"),
    _OPT.EXCHANGE_NAME: _constant("OPR"),
    _OPT.LAST_TRADING_DAY: _fact(_OPT.LAST_TRADING_DAY),
    _OPT.SETTLEMENT_TYPE: _constant("P"),
    _OPT.NET_PERCENT_CHANGE: _percent_change("last"),
    _OPT.MARK_CHANGE: _net_change("mark"),
    _OPT.MARK_CHANGE_PERCENT: _percent_change("mark"),
    _OPT.IMPLIED_YIELD: _constant(0.0),
    _OPT.IS_PENNY: _constant(True),
    _OPT.OPTION_ROOT: _read("contract.underlying"),
    _OPT.HIGH_PRICE_52_WEEK: lambda q: round(max(q.high, q.close) * 3, 2),
    _OPT.LOW_PRICE_52_WEEK: lambda q: round(min(q.low, q.close) / 3, 2),
    _OPT.INDICATIVE_ASKING_PRICE: _constant(0.0),
    _OPT.INDICATIVE_BID_PRICE: _constant(0.0),
    _OPT.INDICATIVE_QUOTE_TIME: _constant(0),
    _OPT.EXERCISE_TYPE: _constant("A"),
}

#: Each level-one service's readers; CHART_EQUITY items are written whole by `chart_item`.
READERS: dict[str, dict[str, Callable[[Any], Any]]] = {
    LEVELONE_EQUITIES: _EQUITY_READERS, LEVELONE_OPTIONS: _OPTION_READERS, CHART_EQUITY: {}}
assert all(set(READERS[service]) == {str(f.value) for f in SERVICES[service]} - {"0"}
           for service in (LEVELONE_EQUITIES, LEVELONE_OPTIONS)), "a level-one field nobody can read"


def option_values(q: SimulatedOption) -> dict[str, Any]:
    """Every LEVELONE_OPTIONS field of a quote, by field number."""
    return {number: read(q) for number, read in _OPTION_READERS.items()}


#: Every item's "delayed": the simulator's data is real-time.
DELAYED = False


def equity_header(q: SimulatedEquity) -> dict[str, Any]:
    """The non-numbered keys of a LEVELONE_EQUITIES snapshot."""
    return {"key": q.symbol, "delayed": DELAYED, "assetMainType": "EQUITY",
            "assetSubType": "ETF" if q.description.endswith(("ETF", "Trust")) else "COE", "cusip": q.cusip}


def option_header(q: SimulatedOption) -> dict[str, Any]:
    return {"key": q.symbol, "delayed": DELAYED, "assetMainType": "OPTION", "cusip": ""}


def chart_item(bar: Bar) -> dict[str, Any]:
    return {
        "seq": 0,
        "key": bar.symbol,
        _CHART.SEQUENCE: bar.sequence,
        _CHART.OPEN_PRICE: wire(bar.open),
        _CHART.HIGH_PRICE: wire(bar.high),
        _CHART.LOW_PRICE: wire(bar.low),
        _CHART.CLOSE_PRICE: wire(bar.close),
        _CHART.VOLUME: float(bar.volume),
        _CHART.CHART_TIME_MILLIS: bar.start_ms,
        _CHART.CHART_DAY: bar.start_ms // _DAY_MS,
    }


def response(request: dict, code: int, msg: str, now_ms: int) -> dict:
    return {"response": [{
        "service": request.get("service"),
        "requestid": request.get("requestid"),
        "command": request.get("command"),
        "timestamp": now_ms,
        "content": {"code": code, "msg": msg},
    }]}


def data(service: str, items: list[dict], now_ms: int) -> dict:
    return {"data": [{"service": service, "timestamp": now_ms, "command": "SUBS", "content": items}]}


def heartbeat(now_ms: int) -> dict:
    return {"notify": [{"heartbeat": str(now_ms)}]}


def stop_streaming(now_ms: int) -> dict:
    """Schwab's notice that it ends the stream (code 30), sent just before it closes the socket."""
    return {"notify": [{"service": "ADMIN", "timestamp": now_ms,
                        "content": {"code": STOP_STREAMING, "msg": "Stop streaming due to empty subscription"}}]}


@dataclass(frozen=True)
class SentTrade:
    """A LEVELONE_EQUITIES update whose TOTAL_VOLUME changed: volume traded since the last update."""

    symbol: str
    trade_time_ms: int
    price: float
    day_volume: int
    size: int


@dataclass(frozen=True)
class Reply:
    """The response to one request, whether to close afterwards, and keys owed a snapshot."""

    frame: dict
    close: bool = False
    service: str = ""
    snapshot: tuple[str, ...] = ()


class Streamers:
    """One streamer connection per customer, across every connection of the server."""

    def __init__(self) -> None:
        self._owners: dict[str, int] = {}

    def claim(self, customer: str, connection: int) -> bool:
        return self._owners.setdefault(customer, connection) == connection

    def release(self, connection: int) -> None:
        self._owners = {c: owner for c, owner in self._owners.items() if owner != connection}


@dataclass
class Subscription:
    keys: dict[str, None] = field(default_factory=dict)  # an ordered set
    fields: tuple[str, ...] = ()
    #: (field, how to read it from a quote) for each of `fields`: level-one services only.
    readers: tuple[tuple[str, Callable[[Any], Any]], ...] = ()


class Session:
    """One streamer connection's protocol state."""

    def __init__(self, connection: int, customer: str, streamers: Streamers, bar_ms: int):
        self.connection = connection
        self.customer = customer
        self.streamers = streamers
        self.bar_ms = bar_ms
        self.logged_in = False
        self.subscriptions: dict[str, Subscription] = {service: Subscription() for service in SERVICES}
        #: What was last sent per service and key: the fields a later update leaves out when unchanged.
        self.last_sent: dict[str, dict[str, dict[str, Any]]] = {service: {} for service in SERVICES}
        self.chart_after: dict[str, int] = {}
        #: Counts every change of the subscribed keys, so a server can keep what it derives from them.
        self.version = 0

    def keys(self, service: str) -> list[str]:
        return list(self.subscriptions[service].keys)

    def subscribed(self, service: str) -> dict[str, None]:
        """The keys of `service` in subscription order, as an ordered set; read it, do not change it."""
        return self.subscriptions[service].keys

    def handle(self, request: dict, now_ms: int) -> Reply:
        """Apply one request; its response comes back with what the server must do next."""
        service, command = request.get("service"), request.get("command")
        if service == "ADMIN" and command == "LOGIN":
            return self._login(request, now_ms)
        if not self.logged_in:
            return Reply(response(request, NOT_LOGGED_IN, "Not logged in: send ADMIN LOGIN first", now_ms))
        if service == "ADMIN" and command == "LOGOUT":
            self.logged_in = False
            self.streamers.release(self.connection)
            return Reply(response(request, SUCCESS, "SUCCESS", now_ms), close=True)
        if service not in SERVICES:
            return Reply(response(request, SERVICE_NOT_AVAILABLE, f"Service {service} not available (SIMULATED)", now_ms))
        if command not in ("SUBS", "ADD", "UNSUBS", "VIEW"):
            return Reply(response(request, BAD_COMMAND, f"Command {command} not supported", now_ms))
        return self._subscribe(request, service, command, now_ms)

    def _login(self, request: dict, now_ms: int) -> Reply:
        token = (request.get("parameters") or {}).get("Authorization", "")
        if not token:
            return Reply(response(request, LOGIN_DENIED, "Login denied: no access token", now_ms), close=True)
        if not self.streamers.claim(self.customer, self.connection):
            msg = "Connection limit reached: one streamer connection per customer"
            return Reply(response(request, CONNECTION_LIMIT, msg, now_ms), close=True)
        self.logged_in = True
        return Reply(response(request, SUCCESS, "server=simulator;status=SIMULATED", now_ms))

    def _subscribe(self, request: dict, service: str, command: str, now_ms: int) -> Reply:
        parameters = request.get("parameters") or {}
        keys = [k.strip() for k in str(parameters.get("keys", "")).split(",") if k.strip()]
        valid = {str(f.value) for f in SERVICES[service]} - {"0"}
        fields = tuple(sorted((f for f in str(parameters.get("fields", "")).split(",") if f in valid), key=int))
        sub = self.subscriptions[service]
        if command == "SUBS":
            wanted = dict.fromkeys(keys)
        elif command == "ADD":
            wanted = {**sub.keys, **dict.fromkeys(keys)}
        elif command == "UNSUBS":
            dropped = set(keys)
            wanted = {k: None for k in sub.keys if k not in dropped}
        else:
            wanted = sub.keys
        if len(wanted) > MAX_KEYS:
            msg = f"Symbol limit reached: {len(wanted)} keys for {service}, at most {MAX_KEYS}"
            return Reply(response(request, SYMBOL_LIMIT, msg, now_ms))
        fresh = list(wanted) if command == "SUBS" else [k for k in wanted if k not in sub.keys]
        for key in set(sub.keys) - set(wanted) | set(fresh):
            self.last_sent[service].pop(key, None)
            if service == CHART_EQUITY:
                self.chart_after.pop(key, None)
        self.version += 1
        sub.keys = wanted
        if fields or command == "SUBS":
            sub.fields = fields or tuple(sorted(valid, key=int))
            sub.readers = tuple((f, READERS[service][f]) for f in sub.fields if f in READERS[service])
        if service == CHART_EQUITY:
            for key in fresh:
                self.chart_after[key] = now_ms - self.bar_ms
        return Reply(response(request, SUCCESS, f"{command} command succeeded", now_ms), service=service, snapshot=tuple(fresh))

    def _level_one(self, service: str, key: str, quote: Any, before: dict[str, Any] | None,
                   header: Callable[[], dict[str, Any]]) -> dict | None:
        """A full snapshot the first time (`before` None), then only the changed fields; None when nothing changed."""
        # The subscribed fields only, through wire() written inline: this runs for every field of every update sent.
        wanted = {f: int(v) if (v := read(quote)).__class__ is float and v.is_integer() else v
                  for f, read in self.subscriptions[service].readers}
        self.last_sent[service][key] = wanted
        if before is None:
            return {**header(), **wanted}
        changed = {f: v for f, v in wanted.items() if before.get(f) != v}
        return {"key": key, "delayed": DELAYED, **changed} if changed else None

    def equity_update(self, quote: SimulatedEquity) -> tuple[dict | None, SentTrade | None]:
        """The item to send for `quote`, and the trade it carries when TOTAL_VOLUME moved."""
        symbol = quote.symbol
        if symbol not in self.subscriptions[LEVELONE_EQUITIES].keys:
            return None, None
        before = self.last_sent[LEVELONE_EQUITIES].get(symbol)
        item = self._level_one(LEVELONE_EQUITIES, symbol, quote, before, lambda: equity_header(quote))
        if item is None or before is None or _TOTAL_VOLUME not in item or _TOTAL_VOLUME not in before:
            return item, None
        volume = quote.total_volume
        return item, SentTrade(symbol, quote.trade_time_ms, quote.last, volume, volume - before[_TOTAL_VOLUME])

    def option_update(self, quote: SimulatedOption) -> dict | None:
        symbol = quote.symbol
        if symbol not in self.subscriptions[LEVELONE_OPTIONS].keys:
            return None
        return self._level_one(LEVELONE_OPTIONS, symbol, quote,
                               self.last_sent[LEVELONE_OPTIONS].get(symbol), lambda: option_header(quote))

    def chart_update(self, bars: list[Bar]) -> list[dict]:
        """Items for the bars of a subscribed symbol not yet sent, oldest first."""
        items = []
        for bar in bars:
            if bar.symbol in self.chart_after and bar.start_ms > self.chart_after[bar.symbol]:
                items.append(chart_item(bar))
                self.chart_after[bar.symbol] = bar.start_ms
        return items


def _utc_iso(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.000+00:00")


def chain_contract(q: SimulatedOption) -> dict[str, Any]:
    """One contract of `GET /marketdata/v1/chains`, in Schwab's names."""
    values = option_values(q)
    c = q.contract
    intrinsic = max(values[_OPT.MONEY_INTRINSIC_VALUE], 0.0)
    return {
        "putCall": "CALL" if c.put_call == "C" else "PUT",
        "symbol": q.symbol,
        "description": values[_OPT.DESCRIPTION],
        "exchangeName": "OPR",
        "bid": q.bid,
        "ask": q.ask,
        "last": q.last,
        "mark": q.mark,
        "bidSize": q.bid_size,
        "askSize": q.ask_size,
        "bidAskSize": f"{q.bid_size}X{q.ask_size}",
        "lastSize": q.last_size,
        "highPrice": q.high,
        "lowPrice": q.low,
        "openPrice": q.open,
        "closePrice": q.close,
        "totalVolume": q.total_volume,
        "tradeTimeInLong": q.trade_time_ms,
        "quoteTimeInLong": q.quote_time_ms,
        "netChange": values[_OPT.NET_CHANGE],
        "volatility": q.volatility,
        "delta": q.delta,
        "gamma": q.gamma,
        "theta": q.theta,
        "vega": q.vega,
        "rho": q.rho,
        "openInterest": q.open_interest,
        "timeValue": round(q.mark - intrinsic, 4),
        "theoreticalOptionValue": q.theoretical,
        "theoreticalVolatility": 29.0,
        "optionDeliverablesList": [{"symbol": c.underlying, "assetType": "STOCK", "deliverableUnits": 100.0}],
        "strikePrice": c.strike,
        "expirationDate": _utc_iso(q.expiration_ms),
        "daysToExpiration": q.days_to_expiration,
        "expirationType": values[_OPT.UV_EXPIRATION_TYPE],
        "lastTradingDay": values[_OPT.LAST_TRADING_DAY],
        "multiplier": 100.0,
        "settlementType": "P",
        "deliverableNote": "",
        "percentChange": values[_OPT.NET_PERCENT_CHANGE],
        "markChange": values[_OPT.MARK_CHANGE],
        "markPercentChange": values[_OPT.MARK_CHANGE_PERCENT],
        "intrinsicValue": round(intrinsic, 4),
        "extrinsicValue": round(q.mark - intrinsic, 4),
        "optionRoot": c.underlying,
        "exerciseType": "A",
        "high52Week": values[_OPT.HIGH_PRICE_52_WEEK],
        "low52Week": values[_OPT.LOW_PRICE_52_WEEK],
        "nonStandard": False,
        "pennyPilot": True,
        "inTheMoney": intrinsic > 0,
        "mini": False,
    }


def option_chain(symbol: str, spot: float, quotes: list[SimulatedOption], today: date, params: dict[str, str]) -> dict:
    """`GET /marketdata/v1/chains` for `quotes`, filtered by the query parameters schwab-py sends.

    Honoured: contractType (CALL, PUT, ALL), strikeCount (the strikes nearest
    the underlying, per expiry), strike, fromDate and toDate (YYYY-MM-DD).
    """
    contract_type = params.get("contractType", "ALL").upper()
    from_date = date.fromisoformat(params["fromDate"]) if params.get("fromDate") else None
    to_date = date.fromisoformat(params["toDate"]) if params.get("toDate") else None
    strike = float(params["strike"]) if params.get("strike") else None
    selected = [
        q for q in quotes
        if contract_type in ("ALL", "CALL" if q.contract.put_call == "C" else "PUT")
        and (from_date is None or q.contract.expiration >= from_date)
        and (to_date is None or q.contract.expiration <= to_date)
        and (strike is None or q.contract.strike == strike)
    ]
    if params.get("strikeCount"):
        count = int(params["strikeCount"])
        listed = sorted({q.contract.strike for q in selected}, key=lambda k: (abs(k - spot), k))[:count]
        selected = [q for q in selected if q.contract.strike in listed]
    maps: dict[str, dict[str, dict[str, list[dict]]]] = {"C": {}, "P": {}}
    for q in selected:
        c = q.contract
        expiry = f"{c.expiration.isoformat()}:{(c.expiration - today).days}"
        maps[c.put_call].setdefault(expiry, {}).setdefault(str(float(c.strike)), []).append(chain_contract(q))
    return {
        "symbol": symbol,
        "status": "SUCCESS" if selected else "FAILED",
        "underlying": None,
        "strategy": "SINGLE",
        "interval": 0.0,
        "isDelayed": False,
        "isIndex": False,
        "interestRate": 4.5,
        "underlyingPrice": spot,
        "volatility": 29.0,
        "daysToExpiration": 0.0,
        "numberOfContracts": len(selected),
        "assetMainType": "EQUITY",
        "assetSubType": "COE",
        "isChainTruncated": False,
        "callExpDateMap": maps["C"],
        "putExpDateMap": maps["P"],
    }


_SESSIONS = {
    "equity": ("EQ", "EQUITY", "equity", ("pre", "regular", "post")),
    "option": ("EQO", "OPTION", "equity option", ("regular",)),
}


def market_hours(markets: list[str], day: date) -> dict:
    """`GET /marketdata/v1/markets`: the NYSE's sessions on `day`, holidays and early closes included."""
    exchange = exchange_sessions(day)
    body: dict[str, dict] = {}
    for market in markets:
        if market not in _SESSIONS:
            continue
        product, market_type, name, sessions = _SESSIONS[market]
        if not exchange:
            body[market] = {market: {"date": day.isoformat(), "marketType": market_type, "product": market,
                                     "isOpen": False}}
            continue
        hours = {
            SCHWAB_SESSIONS[session]: [{"start": exchange[session][0].isoformat(),
                                        "end": exchange[session][1].isoformat()}]
            for session in sessions
        }
        body[market] = {product: {"date": day.isoformat(), "marketType": market_type, "product": product,
                                  "productName": name, "isOpen": True, "sessionHours": hours}}
    return body


def price_history_window(params: dict[str, str]) -> tuple[str, int, int]:
    """`GET /marketdata/v1/pricehistory`'s symbol and startDate..endDate (epoch ms, both required here: the
    service always asks for a window); a missing or malformed one is a ValueError naming it."""
    symbol = params.get("symbol", "").upper()
    if not symbol:
        raise ValueError("symbol is required")
    if params.get("frequencyType", "minute") != "minute" or params.get("frequency", "1") != "1":
        raise ValueError("the simulator serves minute candles only (frequencyType=minute, frequency=1)")
    window = []
    for name in ("startDate", "endDate"):
        raw = params.get(name, "")
        if not (raw.isascii() and raw.isdigit()):
            raise ValueError(f"{name} must be epoch milliseconds, not {raw[:40]!r}")
        window.append(int(raw))
    if window[0] > window[1]:
        raise ValueError("startDate is after endDate")
    return symbol, window[0], window[1]


def price_history(symbol: str, bars: list[Bar]) -> dict:
    """`GET /marketdata/v1/pricehistory`: the market's own completed bars as Schwab's candles (the same bars
    CHART_EQUITY streamed); the simulator's market is always open, so extended hours change nothing."""
    candles = [{"open": bar.open, "high": bar.high, "low": bar.low, "close": bar.close, "volume": bar.volume,
                "datetime": bar.start_ms} for bar in bars]
    return {"candles": candles, "symbol": symbol, "empty": not candles}


def user_preference(socket_url: str) -> dict:
    """`GET /trader/v1/userPreference`: the streamer's address and the ids LOGIN echoes."""
    return {
        "accounts": [{"accountNumber": "SIM00001", "primaryAccount": True, "type": "BROKERAGE",
                      "nickName": "Simulated", "displayAcctId": "...001", "autoPositionEffect": False,
                      "accountColor": "Green"}],
        "streamerInfo": [{
            "streamerSocketUrl": socket_url,
            "schwabClientCustomerId": CUSTOMER_ID,
            "schwabClientCorrelId": "sim-correl-0001",
            "schwabClientChannel": "N9",
            "schwabClientFunctionId": "APIAPP",
        }],
        "offers": [{"level2Permissions": False, "mktDataPermission": "NP"}],
    }
