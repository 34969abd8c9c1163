"""The registry: which record goes to which stream, journal and table, and what a setting turns on; a frame's kind."""

import pytest

from common.config import load
from common.streams import followed, journaled_kinds, stored, stored_streams
from common.transport.messages import EquityQuote, EquityTrade, StorageBudget
from common.transport.topics import kind_of

QUOTES = frozenset({"STORE_QUOTES"})
TRADE = EquityTrade("SPY", 1, 500.25, 100, 1000, 100, 500.24, 500.26, 7)
QUOTE = EquityQuote("SPY", 1, 500.24, 500.26, 3, 4, 1)


def test_quotes_are_neither_journaled_nor_stored_unless_asked():
    assert "equity_quotes" not in {kind.table for kind in stored(frozenset())}
    assert "d/ingest/quote" not in followed("d", frozenset()) and "quote" not in journaled_kinds(frozenset())
    assert stored_streams("d", frozenset()) == ("d/ingest/trade", "d/ingest/index_level", "d/ingest/bar",
                                                 "d/ingest/option",
                                                 "d/indicator/indicator", "d/metrics/streaming_metric",
                                                 "d/metrics/stream_lag")


def test_asked_for_quotes_are_journaled_followed_and_stored_like_the_trades():
    assert "equity_quotes" in {kind.table for kind in stored(QUOTES)}
    assert "d/ingest/quote" in followed("d", QUOTES) and "quote" in journaled_kinds(QUOTES)
    assert "trade" in journaled_kinds(frozenset()) and "option_subscription" not in journaled_kinds(QUOTES)


@pytest.mark.parametrize("raw, opted_in", [("true", QUOTES), ("on", QUOTES), ("0", frozenset()), ("", frozenset())])
def test_store_quotes_is_a_switch(raw, opted_in):
    assert load({"STORE_QUOTES": raw}).opted_in == opted_in


def test_a_frame_is_of_the_kind_its_records_type_is_tagged_with_and_of_one_type_only():
    assert kind_of([TRADE, TRADE]) == "trade" and kind_of((QUOTE,)) == "quote"
    with pytest.raises(TypeError, match="of one type, not of EquityQuote, EquityTrade"):
        kind_of([TRADE, QUOTE])
    with pytest.raises(ValueError, match="no records"):
        kind_of([])
    with pytest.raises(TypeError, match="StorageBudget has no msgspec tag"):
        kind_of([StorageBudget(0, 0, 0, -1.0, "ok")])
