"""The registry: which record goes to which stream, journal and table, and what a setting turns on."""

import pytest

from common.config import load
from common.transport.streams import followed, journaled, stored, stored_streams

QUOTES = frozenset({"STORE_QUOTES"})


def test_quotes_are_neither_journaled_nor_stored_unless_asked():
    assert "equity_quotes" not in {kind.table for kind in stored(frozenset())}
    assert "d/ingest/quote" not in followed("d", frozenset()) and not journaled("quote", frozenset())
    assert stored_streams("d", frozenset()) == ("d/ingest/trade", "d/ingest/bar", "d/ingest/option",
                                                 "d/indicator/indicator", "d/metrics/streaming_metric",
                                                 "d/metrics/stream_lag")


def test_asked_for_quotes_are_journaled_followed_and_stored_like_the_trades():
    assert "equity_quotes" in {kind.table for kind in stored(QUOTES)}
    assert "d/ingest/quote" in followed("d", QUOTES) and journaled("quote", QUOTES)
    assert journaled("trade", frozenset()) and not journaled("option_subscription", QUOTES)


@pytest.mark.parametrize("raw, opted_in", [("true", QUOTES), ("on", QUOTES), ("0", frozenset()), ("", frozenset())])
def test_store_quotes_is_a_switch(raw, opted_in):
    assert load({"STORE_QUOTES": raw}).opted_in == opted_in
