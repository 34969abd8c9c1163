"""Option chains as Schwab serves them and option quotes as ingest publishes them, for tests of their consumers."""

from __future__ import annotations

from collections.abc import Iterable

import httpx
import msgspec

from common.transport.messages import OptionQuote


def contract(expiry: str, put_call: str, strike: float) -> dict:
    yymmdd = expiry[2:4] + expiry[5:7] + expiry[8:10]
    return {"putCall": put_call, "strikePrice": strike,
            "symbol": f"SPY   {yymmdd}{put_call[0]}{int(strike * 1000):08d}"}


def chain_json(spot: float, expiries: dict[str, list[float]]) -> dict:
    maps = {"callExpDateMap": {}, "putExpDateMap": {}}
    for expiry, strikes in expiries.items():
        for side, put_call in (("callExpDateMap", "CALL"), ("putExpDateMap", "PUT")):
            maps[side][f"{expiry}:0"] = {f"{s:.1f}": [contract(expiry, put_call, s)] for s in strikes}
    return {"symbol": "SPY", "status": "SUCCESS", "underlyingPrice": spot, **maps}


def chain_response(status: int, body: dict | bytes) -> httpx.Response:
    """What schwab-py's `get_option_chain` returns: an httpx response to the chains endpoint."""
    content = body if isinstance(body, bytes) else msgspec.json.encode(body)
    return httpx.Response(status, content=content,
                          request=httpx.Request("GET", "https://api.schwabapi.com/marketdata/v1/chains"))


class ScriptedChains:
    """A Schwab client whose `get_option_chain` answers from a script, one response per call, in order.

    It keeps the tickers asked for, and a token dict like schwab-py's session,
    so a forced refresh can be seen.
    """

    def __init__(self, responses: Iterable[httpx.Response]):
        self.responses = list(responses)
        self.asked: list[str] = []
        self.session = type("Session", (), {"token": {"expires_at": 2_000_000_000}})()

    def get_option_chain(self, ticker: str, **dates) -> httpx.Response:
        self.asked.append(ticker)
        return self.responses.pop(0)


def option_quote(underlying: str, underlying_price: float | None, **changes) -> OptionQuote:
    """A complete quote of one of `underlying`'s contracts, carrying `underlying_price` (None: Schwab left it out)."""
    fields = dict(symbol=f"{underlying:<6}261124C00500000", underlying=underlying, quote_time_ms=1_764_000_000_000,
                  contract_type="C", strike=500.0, expiration="2026-11-24", last=2.5, bid=2.4, ask=2.6, mark=2.5,
                  total_volume=1200, open_interest=5000, volatility=20.0, delta=0.52, gamma=0.08, theta=-0.9,
                  vega=0.05, rho=0.01, underlying_price=underlying_price, received_ns=1)
    return OptionQuote(**{**fields, **changes})
