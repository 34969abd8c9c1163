"""Field mapping and changed-field merge, on every captured Schwab frame."""

import pytest

from common.levelone import (
    EQUITY_FIELDS,
    OPTION_FIELDS,
    FrameError,
    MergedBook,
    bar_record,
    equity_records,
    option_record,
)
from tests.schwab_frames import labelled_items, raw_frames

NOW = 1_715_777_956_000_000_000


def test_fixtures_cover_all_three_services():
    assert set(raw_frames()) == {"LEVELONE_EQUITIES", "LEVELONE_OPTIONS", "CHART_EQUITY"}


def test_requested_fields_include_the_symbol():
    assert EQUITY_FIELDS[0].value == 0 and OPTION_FIELDS[0].value == 0


@pytest.mark.parametrize("item", labelled_items("LEVELONE_EQUITIES"), ids=lambda i: i["key"])
def test_equity_snapshot_is_state_not_a_trade(item):
    book = MergedBook()
    trade, quote = equity_records(item, book, NOW)
    assert trade is None, "the first snapshot's volume happened before we subscribed"
    assert quote.symbol == item["key"]
    assert (quote.bid, quote.ask) == (item["BID_PRICE"], item["ASK_PRICE"])
    assert (quote.bid_size, quote.ask_size) == (item["BID_SIZE"], item["ASK_SIZE"])
    assert quote.quote_time_ms == item["QUOTE_TIME_MILLIS"]


@pytest.mark.parametrize("item", labelled_items("LEVELONE_EQUITIES"), ids=lambda i: i["key"])
def test_changed_fields_merge_into_a_complete_trade(item):
    book = MergedBook()
    equity_records(item, book, NOW)
    update = {"key": item["key"], "LAST_PRICE": 100.1234, "TOTAL_VOLUME": item["TOTAL_VOLUME"] + 300,
              "TRADE_TIME_MILLIS": item["TRADE_TIME_MILLIS"] + 5}
    trade, quote = equity_records(update, book, NOW + 1)
    assert quote is None, "no quote field changed"
    assert trade.price == 100.1234
    assert trade.size == 300, "size is the growth of cumulative volume, not LAST_SIZE"
    assert trade.last_size == item["LAST_SIZE"]
    assert trade.day_volume == item["TOTAL_VOLUME"] + 300
    assert (trade.bid, trade.ask) == (item["BID_PRICE"], item["ASK_PRICE"]), "unchanged fields come from state"
    assert trade.trade_time_ms == item["TRADE_TIME_MILLIS"] + 5


def test_quote_only_update_is_not_a_trade():
    book = MergedBook()
    item = labelled_items("LEVELONE_EQUITIES")[0]
    equity_records(item, book, NOW)
    trade, quote = equity_records({"key": item["key"], "BID_PRICE": 1.5}, book, NOW)
    assert trade is None and quote.bid == 1.5 and quote.ask == item["ASK_PRICE"]


def test_keys_do_not_share_state_and_reset_forgets():
    book = MergedBook()
    msft, goog = labelled_items("LEVELONE_EQUITIES")
    equity_records(msft, book, NOW)
    equity_records(goog, book, NOW)
    trade, _ = equity_records({"key": "MSFT", "TOTAL_VOLUME": msft["TOTAL_VOLUME"] + 1}, book, NOW)
    assert trade.price == msft["LAST_PRICE"]
    book.reset()
    trade, _ = equity_records({"key": "MSFT", "TOTAL_VOLUME": msft["TOTAL_VOLUME"] + 2}, book, NOW)
    assert trade is None, "after a reset the next item is a fresh snapshot"


def test_volume_that_shrinks_starts_a_new_day():
    book = MergedBook()
    item = labelled_items("LEVELONE_EQUITIES")[0]
    equity_records(item, book, NOW)
    trade, _ = equity_records({"key": item["key"], "TOTAL_VOLUME": 40}, book, NOW)
    assert trade.size == 40 and trade.day_volume == 40


def test_update_before_any_snapshot_names_what_is_missing():
    book = MergedBook()
    book.merge({"key": "SPY", "TOTAL_VOLUME": 10})
    with pytest.raises(FrameError, match="SPY: no TRADE_TIME_MILLIS"):
        equity_records({"key": "SPY", "TOTAL_VOLUME": 20}, book, NOW)


def test_item_without_key_is_refused_with_its_content():
    with pytest.raises(FrameError, match="no symbol"):
        MergedBook().merge({"BID_PRICE": 1.0})


@pytest.mark.parametrize("item", labelled_items("LEVELONE_OPTIONS"), ids=lambda i: i["key"])
def test_option_snapshot_maps_every_field(item):
    quote = option_record(item, MergedBook(), NOW)
    assert quote.symbol == item["key"]
    assert quote.underlying == item["UNDERLYING"]
    assert quote.contract_type == item["CONTRACT_TYPE"]
    assert quote.strike == item["STRIKE_TYPE"]
    assert quote.expiration == "2024-05-17"
    assert (quote.bid, quote.ask, quote.last, quote.mark) == (
        item["BID_PRICE"], item["ASK_PRICE"], item["LAST_PRICE"], item["MARK"])
    assert (quote.delta, quote.gamma, quote.theta, quote.vega, quote.rho) == (
        item["DELTA"], item["GAMMA"], item["THETA"], item["VEGA"], item["RHO"])
    assert quote.volatility == item["VOLATILITY"]
    assert quote.open_interest == item["OPEN_INTEREST"]
    assert quote.underlying_price == item["UNDERLYING_PRICE"]
    assert quote.quote_time_ms == item["QUOTE_TIME_MILLIS"]


def test_option_update_keeps_unchanged_fields_and_maps_missing_greeks_to_none():
    book = MergedBook()
    item = labelled_items("LEVELONE_OPTIONS")[0]
    option_record(item, book, NOW)
    quote = option_record({"key": item["key"], "BID_PRICE": 99.5, "DELTA": -999.0}, book, NOW)
    assert quote.bid == 99.5 and quote.ask == item["ASK_PRICE"]
    assert quote.delta is None, "Schwab's -999 means 'not computed', never a real delta"


@pytest.mark.parametrize("item", labelled_items("CHART_EQUITY"), ids=lambda i: i["key"])
def test_chart_items_become_bars(item):
    bar = bar_record(item, NOW)
    assert bar.symbol == item["key"]
    assert (bar.open, bar.high, bar.low, bar.close, bar.volume) == (
        item["OPEN_PRICE"], item["HIGH_PRICE"], item["LOW_PRICE"], item["CLOSE_PRICE"], item["VOLUME"])
    assert bar.start_ms == item["CHART_TIME_MILLIS"]
    assert bar.chart_sequence == item["SEQUENCE"]


def test_chart_item_missing_a_field_is_named():
    item = dict(labelled_items("CHART_EQUITY")[0])
    del item["CLOSE_PRICE"]
    with pytest.raises(FrameError, match="lacks CLOSE_PRICE"):
        bar_record(item, NOW)
