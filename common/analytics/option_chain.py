"""Which option contracts to stream, and their rows (pure).

Contracts come from Schwab's option-chain response: the nearest expiry on or
after today (0DTE when one exists), strikes within `band` (a fraction of the
underlying's price) on either side, calls and puts; of an index's two roots
at that expiry, the PM-settled one (SPXW, not SPX's AM-settled monthly). The band is chosen again
when the underlying moves more than a threshold from the price it was chosen
at (its centre), so the contracts streamed stay near the money. Greeks Schwab
could not compute (it sends -999) are filled from Black-Scholes at Schwab's
own IV and marked `greeks_source = 'model'`.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import date, datetime, time
from zoneinfo import ZoneInfo

import msgspec

from common.analytics.greeks import black_scholes
from common.transport.messages import OptionQuote, OptionRow

NEW_YORK = ZoneInfo("America/New_York")
#: Used only where Schwab sent no greeks; a rough short-dated T-bill rate.
RISK_FREE_RATE = 0.045
_YEAR_MS = 365.0 * 24 * 3600 * 1000


class ChainError(ValueError):
    """An option-chain response we cannot select contracts from."""


class ListedContract(msgspec.Struct):
    """One contract of a chain: only what selection reads (Schwab sends some forty fields each). `settlement` is
    'A' for an AM-settled contract (SPX's monthly root, settled from its expiry day's opening prints and so not
    traded on it), 'P' for a PM-settled one (SPXW, every stock option)."""

    symbol: str
    strike: float = msgspec.field(name="strikePrice")
    settlement: str = msgspec.field(default="P", name="settlementType")


#: Expiry ("2026-11-24:0", days to expiry after the colon) → strike ("500.0") → the contracts listed there.
ExpiryMap = dict[str, dict[str, list[ListedContract]]]


class Chain(msgspec.Struct):
    """Schwab's option-chain response, as far as contract selection needs it."""

    symbol: str | None = None
    status: str | None = None
    underlying_price: float | None = msgspec.field(default=None, name="underlyingPrice")
    calls: ExpiryMap | None = msgspec.field(default=None, name="callExpDateMap")
    puts: ExpiryMap | None = msgspec.field(default=None, name="putExpDateMap")


_decode_chain = msgspec.json.Decoder(Chain).decode


def decode_chain(body: bytes) -> Chain:
    """The chain a REST response carries, checked where it enters: a value of the wrong type is a ChainError
    naming its place, and the fields nobody reads are never built (a chain of 200 tickers is megabytes)."""
    try:
        return _decode_chain(body)
    except msgspec.DecodeError as error:
        raise ChainError(f"option chain response cannot be read: {error}") from None


def _expiries(chain: Chain) -> dict[date, list[ListedContract]]:
    contracts: dict[date, list[ListedContract]] = {}
    for side in (chain.calls, chain.puts):
        for expiry_key, strikes in (side or {}).items():
            try:
                expiry = date.fromisoformat(expiry_key.split(":")[0])
            except ValueError:
                raise ChainError(f"option chain for {chain.symbol!r} has an expiry {expiry_key[:40]!r} that is not "
                                 "a date") from None
            for listed in strikes.values():
                contracts.setdefault(expiry, []).extend(listed)
    return contracts


def select_contracts(chain: Chain, band: float, today: date,
                     spot: float | None = None) -> tuple[float, list[str]]:
    """(centre, contract symbols) for the nearest expiry within the band around `spot`.

    `spot` defaults to the chain's own underlying price; the one returned is
    the band's centre, the price a later move is measured from.
    """
    if chain.status not in (None, "SUCCESS"):
        raise ChainError(f"option chain for {chain.symbol!r} has status {chain.status!r}")
    spot = chain.underlying_price if spot is None else spot
    if not spot:
        raise ChainError(f"option chain for {chain.symbol!r} has no underlyingPrice")
    upcoming = {expiry: listed for expiry, listed in _expiries(chain).items() if expiry >= today}
    if not upcoming:
        raise ChainError(f"option chain for {chain.symbol!r} lists no expiry on or after {today}")
    listed = upcoming[min(upcoming)]
    # An index's nearest expiry may list two roots (a third Friday: SPX, AM-settled, and SPXW): the one that
    # trades through the day and settles at its close is streamed.
    if any(c.settlement != "A" for c in listed):
        listed = [c for c in listed if c.settlement != "A"]
    inside = [c for c in listed if abs(c.strike - spot) <= band * spot]
    if not inside:
        nearest = min(abs(c.strike - spot) for c in listed)
        inside = [c for c in listed if abs(c.strike - spot) == nearest]
    return float(spot), sorted(c.symbol for c in inside)


def needs_recentre(centre: float, spot: float, threshold: float) -> bool:
    """Whether `spot` has moved more than `threshold` (a fraction of `centre`) from where the band was chosen."""
    return abs(spot - centre) > threshold * centre


def off_centre(centres: Mapping[str, float], spots: Mapping[str, float], threshold: float) -> list[str]:
    """The tickers whose newest spot has moved past `threshold` from their band's centre."""
    return [ticker for ticker, centre in centres.items()
            if ticker in spots and needs_recentre(centre, spots[ticker], threshold)]


def band_changes(before: Iterable[str], after: Iterable[str]) -> tuple[list[str], list[str]]:
    """(entered, left) when a band moves; contracts in both stay streaming untouched."""
    kept, wanted = set(before), set(after)
    return sorted(wanted - kept), sorted(kept - wanted)


def expiry_ms(expiration: str) -> int:
    """Options stop trading at 16:00 New York time on their expiration date."""
    close = datetime.combine(date.fromisoformat(expiration), time(16), NEW_YORK)
    return int(close.timestamp() * 1000)


def option_row(quote: OptionQuote, stamp_ms: int | None = None) -> OptionRow:
    """The `option_prices` row of a quote: greeks Schwab left out computed by Black-Scholes (from the quote's
    own time), stamped `stamp_ms` where given (a snapshot's interval, `common/store/snapshots.py`), else with
    the quote's time."""
    greeks = (quote.delta, quote.gamma, quote.theta, quote.vega, quote.rho)
    source = "schwab"
    iv = quote.volatility / 100.0 if quote.volatility else None
    if None in greeks and iv and quote.underlying_price:
        years = max(expiry_ms(quote.expiration) - quote.quote_time_ms, 60_000) / _YEAR_MS
        model = black_scholes(quote.underlying_price, quote.strike, years, RISK_FREE_RATE, iv, quote.contract_type == "C")
        greeks = (model.delta, model.gamma, model.theta, model.vega, model.rho)
        source = "model"
    return OptionRow(
        ticker=quote.underlying,
        option_symbol=quote.symbol,
        quote_time_ms=quote.quote_time_ms if stamp_ms is None else stamp_ms,
        option_type=quote.contract_type,
        strike_price=quote.strike,
        expiration_date=quote.expiration,
        last_price=quote.last,
        bid=quote.bid,
        ask=quote.ask,
        mark=quote.mark,
        volume=quote.total_volume,
        open_interest=quote.open_interest,
        delta=greeks[0],
        gamma=greeks[1],
        theta=greeks[2],
        vega=greeks[3],
        rho=greeks[4],
        implied_volatility=iv,
        underlying_price=quote.underlying_price,
        greeks_source=source,
        received_ns=quote.received_ns,
        indicative_bid=quote.indicative_bid,
        indicative_ask=quote.indicative_ask,
        indicative_time_ms=quote.indicative_time_ms,
    )
