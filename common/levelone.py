"""Schwab streaming content items → complete bus records (pure).

Level-one services send a full snapshot of a key first and then only the
fields that changed, so every record here is built from a per-key merged
state, never from one update alone. Items arrive as schwab-py's handlers
deliver them: relabelled from numeric keys to the names of its field enums
(`BID_PRICE`, `TOTAL_VOLUME`, ...).

A trade is an equity update whose TOTAL_VOLUME grew; its size is the growth,
because Schwab throttles updates and several trades fold into one. The first
snapshot of a key is state, not a trade: its volume happened before we looked.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from typing import Any

from schwab.streaming import StreamClient

from common.messages import EquityQuote, EquityTrade, MinuteBar, OptionQuote

_EQ = StreamClient.LevelOneEquityFields
_OPT = StreamClient.LevelOneOptionFields

#: The only fields ingest asks Schwab for: less to send, parse and merge.
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

_QUOTE_FIELDS = frozenset(("BID_PRICE", "ASK_PRICE", "BID_SIZE", "ASK_SIZE"))
#: Schwab's placeholder for a greek or volatility it could not compute.
_NOT_A_NUMBER = -999.0


class FrameError(ValueError):
    """A content item that cannot become a record; the message says why."""


@dataclass
class MergedBook:
    """Merged field state per key for one level-one service on one connection.

    Reset it whenever the connection is replaced: a new connection starts
    with fresh snapshots, and no stale field may leak into a record.
    """

    state: dict[str, dict[str, Any]] = field(default_factory=dict)

    def merge(self, item: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any] | None]:
        """Fold one item into its key's state; returns (state, previous state or None)."""
        key = item.get("key")
        if not isinstance(key, str) or not key:
            raise FrameError(f"content item has no symbol in 'key': {item!r}")
        previous = self.state.get(key)
        merged = dict(previous) if previous else {}
        merged.update(item)
        self.state[key] = merged
        return merged, previous

    def reset(self) -> None:
        self.state.clear()


def _require(state: dict[str, Any], name: str) -> Any:
    value = state.get(name)
    if value is None:
        raise FrameError(f"{state.get('key')}: no {name} yet (update arrived before a snapshot carrying it)")
    return value


def _price(value: Any) -> float | None:
    if value is None:
        return None
    price = float(value)
    return None if price == _NOT_A_NUMBER else price


def equity_records(
    item: dict[str, Any], book: MergedBook, received_ns: int
) -> tuple[EquityTrade | None, EquityQuote | None]:
    """The trade and/or quote one LEVELONE_EQUITIES item stands for."""
    state, previous = book.merge(item)
    symbol = state["key"]
    trade = quote = None
    if "TOTAL_VOLUME" in item and previous is not None:
        day_volume = int(item["TOTAL_VOLUME"])
        before = previous.get("TOTAL_VOLUME")
        # A cumulative volume that shrinks is a new trading day starting from zero.
        size = day_volume - before if before is not None and day_volume >= before else day_volume
        if size > 0:
            trade = EquityTrade(
                symbol=symbol,
                trade_time_ms=int(_require(state, "TRADE_TIME_MILLIS")),
                price=float(_require(state, "LAST_PRICE")),
                size=size,
                day_volume=day_volume,
                last_size=int(state.get("LAST_SIZE") or 0),
                bid=_price(state.get("BID_PRICE")),
                ask=_price(state.get("ASK_PRICE")),
                received_ns=received_ns,
            )
    if _QUOTE_FIELDS.intersection(item):
        quote = EquityQuote(
            symbol=symbol,
            quote_time_ms=int(state.get("QUOTE_TIME_MILLIS") or 0),
            bid=_price(state.get("BID_PRICE")),
            ask=_price(state.get("ASK_PRICE")),
            bid_size=int(state.get("BID_SIZE") or 0),
            ask_size=int(state.get("ASK_SIZE") or 0),
            received_ns=received_ns,
        )
    return trade, quote


def bar_record(item: dict[str, Any], received_ns: int) -> MinuteBar:
    """A CHART_EQUITY item: always complete, never a delta."""
    try:
        return MinuteBar(
            symbol=item["key"],
            start_ms=int(item["CHART_TIME_MILLIS"]),
            open=float(item["OPEN_PRICE"]),
            high=float(item["HIGH_PRICE"]),
            low=float(item["LOW_PRICE"]),
            close=float(item["CLOSE_PRICE"]),
            volume=float(item["VOLUME"]),
            chart_sequence=int(item.get("SEQUENCE") or 0),
            received_ns=received_ns,
        )
    except KeyError as missing:
        raise FrameError(f"CHART_EQUITY item lacks {missing.args[0]}: {item!r}") from None


def option_record(item: dict[str, Any], book: MergedBook, received_ns: int) -> OptionQuote:
    """The complete option quote after one LEVELONE_OPTIONS item."""
    state, _ = book.merge(item)
    contract_type = _require(state, "CONTRACT_TYPE")
    if contract_type not in ("C", "P"):
        raise FrameError(f"{state['key']}: CONTRACT_TYPE {contract_type!r} is neither C nor P")
    expiration = date(
        int(_require(state, "EXPIRATION_YEAR")),
        int(_require(state, "EXPIRATION_MONTH")),
        int(_require(state, "EXPIRATION_DAY")),
    )
    volatility = _price(state.get("VOLATILITY"))
    return OptionQuote(
        symbol=state["key"],
        underlying=str(_require(state, "UNDERLYING")),
        quote_time_ms=int(_require(state, "QUOTE_TIME_MILLIS")),
        contract_type=contract_type,
        strike=float(_require(state, "STRIKE_TYPE")),
        expiration=expiration.isoformat(),
        last=_price(state.get("LAST_PRICE")),
        bid=_price(state.get("BID_PRICE")),
        ask=_price(state.get("ASK_PRICE")),
        mark=_price(state.get("MARK")),
        total_volume=int(state.get("TOTAL_VOLUME") or 0),
        open_interest=int(state.get("OPEN_INTEREST") or 0),
        volatility=volatility,
        delta=_price(state.get("DELTA")),
        gamma=_price(state.get("GAMMA")),
        theta=_price(state.get("THETA")),
        vega=_price(state.get("VEGA")),
        rho=_price(state.get("RHO")),
        underlying_price=_price(state.get("UNDERLYING_PRICE")),
        received_ns=received_ns,
    )
