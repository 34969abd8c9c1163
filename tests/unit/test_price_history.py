"""Minute price history from Schwab's REST API, checked where it enters."""

import msgspec
import pytest

from common.feed.price_history import PriceHistoryError, decode_history, history_bars
from common.transport.messages import MinuteBar

T = 1_764_000_000_000


def body(*candles: dict, symbol: str = "SPY") -> bytes:
    return msgspec.json.encode({"symbol": symbol, "empty": not candles, "candles": list(candles)})


def candle(minute: int = 0, **changes) -> dict:
    return {"open": 417.1, "high": 417.4, "low": 417.0, "close": 417.25, "volume": 1200,
            "datetime": T + minute * 60_000, **changes}


def test_good_candles_become_bars_marked_with_their_source_and_no_sequence():
    checked = history_bars(decode_history(body(candle(0), candle(1))), "SPY", T, T + 60_000, "backfill", 7)
    assert checked.rejected == []
    assert checked.bars == [MinuteBar("SPY", T, 417.1, 417.4, 417.0, 417.25, 1200.0, -1, 7, "backfill"),
                            MinuteBar("SPY", T + 60_000, 417.1, 417.4, 417.0, 417.25, 1200.0, -1, 7, "backfill")]


@pytest.mark.parametrize("changes, reason", [
    ({"datetime": T - 1}, "outside_window"),
    ({"low": 0.0}, "price_invalid"),
    ({"close": 418.0}, "bar_inconsistent"),
    ({"volume": -1}, "size_invalid"),
])
def test_a_candle_no_market_has_is_refused_and_costs_no_other(changes, reason):
    checked = history_bars(decode_history(body(candle(**changes), candle(1))), "SPY", T, T + 60_000, "repaired", 1)
    assert [bar.start_ms for bar in checked.bars] == [T + 60_000]
    assert checked.rejected == [(changes.get("datetime", T), reason)]


@pytest.mark.parametrize("raw, field", [
    (b'{"candles": [{"open": "x"}]}', r"\$.candles\[0\].open"),
    (b'{"symbol": "SPY"}', "candles"),
    (b"<html>", "malformed"),
])
def test_a_body_of_another_shape_is_refused_naming_the_field(raw, field):
    with pytest.raises(PriceHistoryError, match=field):
        decode_history(raw)


def test_history_of_another_symbol_or_an_unknown_source_is_refused():
    with pytest.raises(PriceHistoryError, match="'QQQ', not 'SPY'"):
        history_bars(decode_history(body(candle(), symbol="QQQ")), "SPY", T, T, "backfill", 1)
    with pytest.raises(ValueError, match="source must be one of"):
        history_bars(decode_history(body()), "SPY", T, T, "stream", 1)
