"""Schwab streamer frames, built the way schwab-py reads them (pure).

Field numbers come from schwab-py's own enums. A `Session` is one streamer
connection's protocol state: login, the subscribed keys and fields per
service, and what was last sent for each key, so that the first item for a
key is a full snapshot and every later one carries only what changed.

Value types follow the captured frames: Schwab writes a double that happens
to be whole without its fraction (`"20": 70`), so `wire` does the same; the
Python type in `equity_values`/`option_values` is the field's declared type.
CHART_EQUITY volume is the exception and is always written as a double.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime, timedelta, timezone
from typing import Any

from schwab.streaming import StreamClient

from common import option_symbols
from common.market_hours import SCHWAB_SESSIONS, exchange_sessions
from common.simulator.market import Bar, EquityQuote, OptionQuote

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


def wire(value: Any) -> Any:
    """A value as Schwab writes it: whole doubles lose their fraction."""
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


def _change(now: float, before: float) -> tuple[float, float]:
    """(net change, percent change) against `before`."""
    net = round(now - before, 4)
    return net, round(100 * net / before, 8) if before else 0.0


def equity_values(q: EquityQuote) -> dict[str, Any]:
    """Every LEVELONE_EQUITIES field of a quote, by field number."""
    net, net_pct = _change(q.last, q.close)
    mark_net, mark_pct = _change(q.mark, q.close)
    values = {
        EQUITY.BID_PRICE: q.bid,
        EQUITY.ASK_PRICE: q.ask,
        EQUITY.LAST_PRICE: q.last,
        EQUITY.BID_SIZE: q.bid_size,
        EQUITY.ASK_SIZE: q.ask_size,
        EQUITY.ASK_ID: "Q",
        EQUITY.BID_ID: "Q",
        EQUITY.TOTAL_VOLUME: q.total_volume,
        EQUITY.LAST_SIZE: q.last_size,
        EQUITY.HIGH_PRICE: q.high,
        EQUITY.LOW_PRICE: q.low,
        EQUITY.CLOSE_PRICE: q.close,
        EQUITY.EXCHANGE_ID: "Q",
        EQUITY.MARGINABLE: True,
        EQUITY.DESCRIPTION: q.description,
        EQUITY.LAST_ID: "Q",
        EQUITY.OPEN_PRICE: q.open,
        EQUITY.NET_CHANGE: net,
        EQUITY.HIGH_PRICE_52_WEEK: round(q.close * 1.25, 2),
        EQUITY.LOW_PRICE_52_WEEK: round(q.close * 0.75, 2),
        EQUITY.PE_RATIO: 25.5,
        EQUITY.DIVIDEND_AMOUNT: 1.5,
        EQUITY.DIVIDEND_YIELD: 0.75,
        EQUITY.NAV: 0.0,
        EQUITY.EXCHANGE_NAME: "NASDAQ",
        EQUITY.DIVIDEND_DATE: "2025-12-15 00:00:00.0",
        EQUITY.REGULAR_MARKET_QUOTE: True,
        EQUITY.REGULAR_MARKET_TRADE: True,
        EQUITY.REGULAR_MARKET_LAST_PRICE: q.last,
        EQUITY.REGULAR_MARKET_LAST_SIZE: q.last_size,
        EQUITY.REGULAR_MARKET_NET_CHANGE: net,
        EQUITY.SECURITY_STATUS: "Normal",
        EQUITY.MARK: q.mark,
        EQUITY.QUOTE_TIME_MILLIS: q.quote_time_ms,
        EQUITY.TRADE_TIME_MILLIS: q.trade_time_ms,
        EQUITY.REGULAR_MARKET_TRADE_MILLIS: q.trade_time_ms,
        EQUITY.BID_TIME_MILLIS: q.quote_time_ms,
        EQUITY.ASK_TIME_MILLIS: q.quote_time_ms,
        EQUITY.ASK_MIC_ID: "XNAS",
        EQUITY.BID_MIC_ID: "XNAS",
        EQUITY.LAST_MIC_ID: "XNAS",
        EQUITY.NET_CHANGE_PERCENT: net_pct,
        EQUITY.REGULAR_MARKET_CHANGE_PERCENT: net_pct,
        EQUITY.MARK_CHANGE: mark_net,
        EQUITY.MARK_CHANGE_PERCENT: mark_pct,
        EQUITY.HTB_QUANTITY: 50_000_000,
        EQUITY.HTB_RATE: 0.0,
        EQUITY.HARD_TO_BORROW: 0,
        EQUITY.IS_SHORTABLE: 1,
        EQUITY.POST_MARKET_NET_CHANGE: 0.0,
        EQUITY.POST_MARKET_NET_CHANGE_PERCENT: 0.0,
    }
    return {str(f.value): v for f, v in values.items()}


def option_values(q: OptionQuote) -> dict[str, Any]:
    """Every LEVELONE_OPTIONS field of a quote, by field number."""
    c = q.contract
    intrinsic = round(q.underlying_price - c.strike if c.put_call == "C" else c.strike - q.underlying_price, 4)
    net, net_pct = _change(q.last, q.close)
    mark_net, mark_pct = _change(q.mark, q.close)
    last_day = datetime(c.expiration.year, c.expiration.month, c.expiration.day, tzinfo=timezone.utc) + timedelta(days=1)
    values = {
        OPTION.DESCRIPTION: option_symbols.description(c),
        OPTION.BID_PRICE: q.bid,
        OPTION.ASK_PRICE: q.ask,
        OPTION.LAST_PRICE: q.last,
        OPTION.HIGH_PRICE: q.high,
        OPTION.LOW_PRICE: q.low,
        OPTION.CLOSE_PRICE: q.close,
        OPTION.TOTAL_VOLUME: q.total_volume,
        OPTION.OPEN_INTEREST: q.open_interest,
        OPTION.VOLATILITY: q.volatility,
        OPTION.MONEY_INTRINSIC_VALUE: intrinsic,
        OPTION.EXPIRATION_YEAR: c.expiration.year,
        OPTION.MULTIPLIER: 100,
        OPTION.DIGITS: 2,
        OPTION.OPEN_PRICE: q.open,
        OPTION.BID_SIZE: q.bid_size,
        OPTION.ASK_SIZE: q.ask_size,
        OPTION.LAST_SIZE: q.last_size,
        OPTION.NET_CHANGE: net,
        OPTION.STRIKE_TYPE: c.strike,
        OPTION.CONTRACT_TYPE: c.put_call,
        OPTION.UNDERLYING: c.underlying,
        OPTION.EXPIRATION_MONTH: c.expiration.month,
        OPTION.DELIVERABLES: f"100 {c.underlying}",
        OPTION.TIME_VALUE: round(q.mark - max(intrinsic, 0.0), 4),
        OPTION.EXPIRATION_DAY: c.expiration.day,
        OPTION.DAYS_TO_EXPIRATION: q.days_to_expiration,
        OPTION.DELTA: q.delta,
        OPTION.GAMMA: q.gamma,
        OPTION.THETA: q.theta,
        OPTION.VEGA: q.vega,
        OPTION.RHO: q.rho,
        OPTION.SECURITY_STATUS: "Normal",
        OPTION.THEORETICAL_OPTION_VALUE: q.theoretical,
        OPTION.UNDERLYING_PRICE: q.underlying_price,
        OPTION.UV_EXPIRATION_TYPE: "S" if c.expiration.weekday() == 4 else "W",
        OPTION.MARK: q.mark,
        OPTION.QUOTE_TIME_MILLIS: q.quote_time_ms,
        OPTION.TRADE_TIME_MILLIS: q.trade_time_ms,
        OPTION.EXCHANGE_ID: "O",
        OPTION.EXCHANGE_NAME: "OPR",
        OPTION.LAST_TRADING_DAY: int(last_day.timestamp() * 1000),
        OPTION.SETTLEMENT_TYPE: "P",
        OPTION.NET_PERCENT_CHANGE: net_pct,
        OPTION.MARK_CHANGE: mark_net,
        OPTION.MARK_CHANGE_PERCENT: mark_pct,
        OPTION.IMPLIED_YIELD: 0.0,
        OPTION.IS_PENNY: True,
        OPTION.OPTION_ROOT: c.underlying,
        OPTION.HIGH_PRICE_52_WEEK: round(max(q.high, q.close) * 3, 2),
        OPTION.LOW_PRICE_52_WEEK: round(min(q.low, q.close) / 3, 2),
        OPTION.INDICATIVE_ASKING_PRICE: 0.0,
        OPTION.INDICATIVE_BID_PRICE: 0.0,
        OPTION.INDICATIVE_QUOTE_TIME: 0,
        OPTION.EXERCISE_TYPE: "A",
    }
    return {str(f.value): v for f, v in values.items()}


def equity_header(q: EquityQuote) -> dict[str, Any]:
    """The non-numbered keys of a LEVELONE_EQUITIES snapshot."""
    return {"key": q.symbol, "delayed": False, "assetMainType": "EQUITY",
            "assetSubType": "ETF" if q.description.endswith(("ETF", "Trust")) else "COE", "cusip": q.cusip}


def option_header(q: OptionQuote) -> dict[str, Any]:
    return {"key": q.symbol, "delayed": False, "assetMainType": "OPTION", "cusip": ""}


def chart_item(bar: Bar) -> dict[str, Any]:
    return {
        "seq": 0,
        "key": bar.symbol,
        str(CHART.SEQUENCE.value): bar.sequence,
        str(CHART.OPEN_PRICE.value): wire(bar.open),
        str(CHART.HIGH_PRICE.value): wire(bar.high),
        str(CHART.LOW_PRICE.value): wire(bar.low),
        str(CHART.CLOSE_PRICE.value): wire(bar.close),
        str(CHART.VOLUME.value): float(bar.volume),
        str(CHART.CHART_TIME_MILLIS.value): bar.start_ms,
        str(CHART.CHART_DAY.value): bar.start_ms // _DAY_MS,
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


class Session:
    """One streamer connection's protocol state."""

    def __init__(self, connection: int, customer: str, streamers: Streamers, bar_ms: int):
        self.connection = connection
        self.customer = customer
        self.streamers = streamers
        self.bar_ms = bar_ms
        self.logged_in = False
        self.subscriptions: dict[str, Subscription] = {service: Subscription() for service in SERVICES}
        self.last_sent: dict[tuple[str, str], dict[str, Any]] = {}
        self.chart_after: dict[str, int] = {}

    def keys(self, service: str) -> list[str]:
        return list(self.subscriptions[service].keys)

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
            self.last_sent.pop((service, key), None)
            if service == CHART_EQUITY:
                self.chart_after.pop(key, None)
        sub.keys = wanted
        if fields or command == "SUBS":
            sub.fields = fields or tuple(sorted(valid, key=int))
        if service == CHART_EQUITY:
            for key in fresh:
                self.chart_after[key] = now_ms - self.bar_ms
        return Reply(response(request, SUCCESS, f"{command} command succeeded", now_ms), service=service, snapshot=tuple(fresh))

    def _level_one(self, service: str, header: dict[str, Any], values: dict[str, Any]) -> dict | None:
        """A full snapshot the first time, then only the changed fields; None when nothing changed."""
        key = header["key"]
        if key not in self.subscriptions[service].keys:
            return None
        wanted = {f: wire(values[f]) for f in self.subscriptions[service].fields}
        before = self.last_sent.get((service, key))
        self.last_sent[(service, key)] = wanted
        if before is None:
            return {**header, **wanted}
        changed = {f: v for f, v in wanted.items() if before.get(f) != v}
        return {"key": key, "delayed": header["delayed"], **changed} if changed else None

    def equity_update(self, quote: EquityQuote) -> tuple[dict | None, SentTrade | None]:
        """The item to send for `quote`, and the trade it carries when TOTAL_VOLUME moved."""
        volume_field = str(EQUITY.TOTAL_VOLUME.value)
        before = self.last_sent.get((LEVELONE_EQUITIES, quote.symbol), {}).get(volume_field)
        item = self._level_one(LEVELONE_EQUITIES, equity_header(quote), equity_values(quote))
        if item is None or before is None or volume_field not in item:
            return item, None
        trade = SentTrade(quote.symbol, quote.trade_time_ms, quote.last, quote.total_volume, quote.total_volume - before)
        return item, trade

    def option_update(self, quote: OptionQuote) -> dict | None:
        return self._level_one(LEVELONE_OPTIONS, option_header(quote), option_values(quote))

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


def chain_contract(q: OptionQuote) -> dict[str, Any]:
    """One contract of `GET /marketdata/v1/chains`, in Schwab's names."""
    values = option_values(q)
    c = q.contract
    intrinsic = max(values[str(OPTION.MONEY_INTRINSIC_VALUE.value)], 0.0)
    return {
        "putCall": "CALL" if c.put_call == "C" else "PUT",
        "symbol": q.symbol,
        "description": values[str(OPTION.DESCRIPTION.value)],
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
        "netChange": values[str(OPTION.NET_CHANGE.value)],
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
        "expirationType": values[str(OPTION.UV_EXPIRATION_TYPE.value)],
        "lastTradingDay": values[str(OPTION.LAST_TRADING_DAY.value)],
        "multiplier": 100.0,
        "settlementType": "P",
        "deliverableNote": "",
        "percentChange": values[str(OPTION.NET_PERCENT_CHANGE.value)],
        "markChange": values[str(OPTION.MARK_CHANGE.value)],
        "markPercentChange": values[str(OPTION.MARK_CHANGE_PERCENT.value)],
        "intrinsicValue": round(intrinsic, 4),
        "extrinsicValue": round(q.mark - intrinsic, 4),
        "optionRoot": c.underlying,
        "exerciseType": "A",
        "high52Week": values[str(OPTION.HIGH_PRICE_52_WEEK.value)],
        "low52Week": values[str(OPTION.LOW_PRICE_52_WEEK.value)],
        "nonStandard": False,
        "pennyPilot": True,
        "inTheMoney": intrinsic > 0,
        "mini": False,
    }


def option_chain(symbol: str, spot: float, quotes: list[OptionQuote], today: date, params: dict[str, str]) -> dict:
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
