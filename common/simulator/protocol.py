"""Schwab streamer frames, built the way schwab-py reads them (pure).

What each service sends, field by field, is declared with the service
(`common/feed/services/`: its schwab-py field enum, and how the simulator
reads each field from a simulated quote or writes a bar); this module speaks
the protocol around it. A `Session` is one streamer connection's protocol
state: login, the subscribed keys and fields per service, and what was last
sent for each key, so that the first item for a key is a full snapshot and
every later one carries only what changed.

Value types follow the captured frames: Schwab writes a double that happens
to be whole without its fraction (`"20": 70`), as `service.wire` does; the
Python type in `field_values` is the field's declared type. CHART_EQUITY
volume is the exception and is always written as a double.

Every update the simulator sends passes through here, so a session looks up
the readers of the fields it subscribed once, and frames are encoded by
msgspec (`encode`): the same JSON values as `json.dumps` (a float may be
spelled differently, `0.00002799` for `2.799e-05`, and reads back the same).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, datetime, timezone
from typing import Any

import msgspec

from common.feed.market_hours import SCHWAB_SESSIONS, exchange_sessions
from common.feed.service import TICKERS, ChartServing, LevelOneServing
from common.feed.services import SERVICES, chart_equity, levelone_equities, levelone_options
from common.simulator.market import Bar, SimulatedEquity, SimulatedOption
from common.symbols import is_index

LEVELONE_EQUITIES = levelone_equities.NAME
LEVELONE_OPTIONS = levelone_options.NAME
CHART_EQUITY = chart_equity.NAME
#: The services keyed by ticker: level-one (a quote per symbol) and chart (bars per symbol).
TICKER_LEVEL_ONE = tuple(name for name, service in SERVICES.items()
                         if service.keys == TICKERS and isinstance(service.served, LevelOneServing))
TICKER_CHARTS = tuple(name for name, service in SERVICES.items()
                      if service.keys == TICKERS and isinstance(service.served, ChartServing))
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

#: An option field's number by name, as frames carry it: `_OPT["DESCRIPTION"] == "10"`.
_OPT = {f.name: str(f.value) for f in levelone_options.SCHWAB}
#: A trade's mark in every level-one service keyed by ticker: its TOTAL_VOLUME (field 8 in each).
_TOTAL_VOLUME = str(levelone_equities.SCHWAB.TOTAL_VOLUME.value)
assert all(str(service.fields["total_volume"].value) == _TOTAL_VOLUME for service in SERVICES.values()
           if "total_volume" in service.fields and service.keys == TICKERS)
_encoder = msgspec.json.Encoder()
#: The account's status in the LOGIN reply: a non-professional, as most users of a personal Schwab app are.
ENTITLEMENT = "NP"


def encode(frame: dict) -> bytes:
    """A frame as the UTF-8 JSON text sent on the socket (event loop thread only: the encoder is shared)."""
    return _encoder.encode(frame)


def field_values(service: str, quote: Any) -> dict[str, Any]:
    """Every field of a level-one service for a simulated quote, by field number."""
    served = SERVICES[service].served
    assert isinstance(served, LevelOneServing)
    return {number: read(quote) for number, read in served.readers.items()}


for _service in SERVICES.values():
    if isinstance(_service.served, LevelOneServing):
        assert set(_service.served.readers) == _service.numbers, \
            f"a {_service.name} field the simulator cannot read"


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

    def __init__(self, connection: int, customer: str, streamers: Streamers, bar_ms: int, delayed: bool = False):
        self.connection = connection
        self.customer = customer
        self.streamers = streamers
        self.bar_ms = bar_ms
        #: Every level-one item's "delayed": False as for an account entitled to real-time data.
        self.delayed = delayed
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
        return Reply(response(request, SUCCESS, f"server=simulator;status={ENTITLEMENT}", now_ms))

    def _subscribe(self, request: dict, service: str, command: str, now_ms: int) -> Reply:
        parameters = request.get("parameters") or {}
        keys = [k.strip() for k in str(parameters.get("keys", "")).split(",") if k.strip()]
        valid = SERVICES[service].numbers
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
        charted = isinstance(SERVICES[service].served, ChartServing)
        for key in set(sub.keys) - set(wanted) | set(fresh):
            self.last_sent[service].pop(key, None)
            if charted:
                self.chart_after.pop(key, None)
        self.version += 1
        sub.keys = wanted
        if fields or command == "SUBS":
            sub.fields = fields or tuple(sorted(valid, key=int))
            served = SERVICES[service].served
            if isinstance(served, LevelOneServing):
                sub.readers = tuple((f, served.readers[f]) for f in sub.fields)
        if charted:
            for key in fresh:
                self.chart_after[key] = now_ms - self.bar_ms
        return Reply(response(request, SUCCESS, f"{command} command succeeded", now_ms), service=service, snapshot=tuple(fresh))

    def _level_one(self, service: str, key: str, quote: Any, before: dict[str, Any] | None) -> dict | None:
        """A full snapshot the first time (`before` None), then only the changed fields; None when nothing changed."""
        # The subscribed fields only, through wire() written inline: this runs for every field of every update sent.
        wanted = {f: int(v) if (v := read(quote)).__class__ is float and v.is_integer() else v
                  for f, read in self.subscriptions[service].readers}
        self.last_sent[service][key] = wanted
        if before is None:
            served = SERVICES[service].served
            assert isinstance(served, LevelOneServing)
            return {**served.header(quote, self.delayed), **wanted}
        changed = {f: v for f, v in wanted.items() if before.get(f) != v}
        return {"key": key, "delayed": self.delayed, **changed} if changed else None

    def ticker_update(self, quote: SimulatedEquity,
                      service: str = LEVELONE_EQUITIES) -> tuple[dict | None, SentTrade | None]:
        """The item of a service keyed by ticker (a stock's, an index's, a future's) to send for `quote`, and the
        trade it carries when TOTAL_VOLUME moved."""
        symbol = quote.symbol
        if symbol not in self.subscriptions[service].keys:
            return None, None
        before = self.last_sent[service].get(symbol)
        item = self._level_one(service, symbol, quote, before)
        if item is None or before is None or _TOTAL_VOLUME not in item or _TOTAL_VOLUME not in before:
            return item, None
        volume = quote.total_volume
        return item, SentTrade(symbol, quote.trade_time_ms, quote.last, volume, volume - before[_TOTAL_VOLUME])

    def option_update(self, quote: SimulatedOption) -> dict | None:
        symbol = quote.symbol
        if symbol not in self.subscriptions[LEVELONE_OPTIONS].keys:
            return None
        return self._level_one(LEVELONE_OPTIONS, symbol, quote, self.last_sent[LEVELONE_OPTIONS].get(symbol))

    def chart_update(self, bars: list[Bar], service: str = CHART_EQUITY) -> list[dict]:
        """Items of a chart service for the bars of a subscribed symbol not yet sent, oldest first."""
        served = SERVICES[service].served
        assert isinstance(served, ChartServing)
        items = []
        for bar in bars:
            if bar.symbol in self.chart_after and bar.start_ms > self.chart_after[bar.symbol]:
                items.append(served.item(bar))
                self.chart_after[bar.symbol] = bar.start_ms
        return items


def _utc_iso(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.000+00:00")


def chain_contract(q: SimulatedOption) -> dict[str, Any]:
    """One contract of `GET /marketdata/v1/chains`, in Schwab's names."""
    values = field_values(LEVELONE_OPTIONS, q)
    c = q.contract
    underlying = values[_OPT["UNDERLYING"]]
    index = is_index(underlying)
    intrinsic = max(values[_OPT["MONEY_INTRINSIC_VALUE"]], 0.0)
    return {
        "putCall": "CALL" if c.put_call == "C" else "PUT",
        "symbol": q.symbol,
        "description": values[_OPT["DESCRIPTION"]],
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
        "netChange": values[_OPT["NET_CHANGE"]],
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
        "optionDeliverablesList": [{"symbol": underlying, "assetType": "INDEX" if index else "STOCK",
                                    "deliverableUnits": 100.0}],
        "strikePrice": c.strike,
        "expirationDate": _utc_iso(q.expiration_ms),
        "daysToExpiration": q.days_to_expiration,
        "expirationType": values[_OPT["UV_EXPIRATION_TYPE"]],
        "lastTradingDay": values[_OPT["LAST_TRADING_DAY"]],
        "multiplier": 100.0,
        "settlementType": values[_OPT["SETTLEMENT_TYPE"]],
        "deliverableNote": "",
        "percentChange": values[_OPT["NET_PERCENT_CHANGE"]],
        "markChange": values[_OPT["MARK_CHANGE"]],
        "markPercentChange": values[_OPT["MARK_CHANGE_PERCENT"]],
        "intrinsicValue": round(intrinsic, 4),
        "extrinsicValue": round(q.mark - intrinsic, 4),
        "optionRoot": c.underlying,
        "exerciseType": "E" if index else "A",
        "high52Week": values[_OPT["HIGH_PRICE_52_WEEK"]],
        "low52Week": values[_OPT["LOW_PRICE_52_WEEK"]],
        "nonStandard": False,
        "pennyPilot": True,
        "inTheMoney": intrinsic > 0,
        "mini": False,
    }


class TooBigBody(Exception):
    """A response larger than Schwab's API gateway sends: it answers with `TOO_BIG_BODY` instead."""


#: Schwab's gateway (Apigee) answering a response over its size limit.
TOO_BIG_BODY = {"fault": {"faultstring": "Body buffer overflow", "detail": {"errorcode": "protocol.http.TooBigBody"}}}


def option_chain(symbol: str, spot: float, quotes: list[SimulatedOption], today: date, params: dict[str, str]) -> dict:
    """`GET /marketdata/v1/chains` for `quotes`, filtered by the query parameters schwab-py sends.

    Honoured: contractType (CALL, PUT, ALL), strikeCount (the strikes nearest
    the underlying, per expiry), strike, fromDate and toDate (YYYY-MM-DD). An index's chain asked for with neither a strike count nor
    a strike is refused as Schwab's gateway refuses it (`TooBigBody`).
    """
    if is_index(symbol) and not params.get("strikeCount") and not params.get("strike"):
        raise TooBigBody(f"the {symbol} chain unbounded is larger than a response may be: pass strikeCount")
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
        "isIndex": is_index(symbol),
        "interestRate": 4.5,
        "underlyingPrice": spot,
        "volatility": 29.0,
        "daysToExpiration": 0.0,
        "numberOfContracts": len(selected),
        "assetMainType": "INDEX" if is_index(symbol) else "EQUITY",
        "assetSubType": "INX" if is_index(symbol) else "COE",
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
