"""The merge of checked updates into complete records, on every captured Schwab frame."""

from __future__ import annotations

import pytest
from msgspec import structs

from common.feed.levelone import Incomplete
from common.feed.services.chart_equity import BarBook, ChartItem
from common.feed.services.levelone_equities import EquityBook, EquityUpdate
from common.feed.services.levelone_futures import FuturesBook, FuturesUpdate
from common.feed.services.levelone_options import OptionBook, OptionUpdate
from common.transport.messages import IndexLevel
from tests.helpers.records import trade_and_quote
from tests.helpers.schwab_frames import captured

NOW = 1_715_777_956_000_000_000
MS = 1_715_777_956_144  # the captured equity frame's own timestamp
DAY_MS = 86_400_000


def equities() -> list[EquityUpdate]:
    return captured("LEVELONE_EQUITIES")


@pytest.mark.parametrize("update", equities(), ids=lambda u: u.key)
def test_equity_snapshot_is_state_not_a_trade(update):
    trade, quote = trade_and_quote(EquityBook().merge(update, MS, NOW))
    assert trade is None, "the first snapshot's volume happened before we subscribed"
    assert quote.symbol == update.key
    assert (quote.bid, quote.ask, quote.bid_size, quote.ask_size) == (update.bid, update.ask, update.bid_size,
                                                                       update.ask_size)
    assert quote.quote_time_ms == update.quote_time


@pytest.mark.parametrize("update", equities(), ids=lambda u: u.key)
def test_changed_fields_merge_into_a_complete_trade(update):
    book = EquityBook()
    book.merge(update, MS, NOW)
    trade, quote = trade_and_quote(book.merge(EquityUpdate(key=update.key, last=100.1234, total_volume=update.total_volume + 300,
                                           trade_time=update.trade_time + 5), MS + 5, NOW + 1))
    assert quote is None, "no quote field changed"
    assert trade.price == 100.1234
    assert trade.size == 300, "size is the growth of cumulative volume, not LAST_SIZE"
    assert trade.last_size == update.last_size
    assert trade.day_volume == update.total_volume + 300
    assert (trade.bid, trade.ask) == (update.bid, update.ask), "unchanged fields come from state"
    assert trade.trade_time_ms == update.trade_time + 5


def test_a_trade_or_a_quote_without_its_own_time_takes_the_frames():
    book = EquityBook()
    snapshot = equities()[0]
    book.merge(snapshot, MS, NOW)
    trade, quote = trade_and_quote(book.merge(EquityUpdate(key=snapshot.key, total_volume=snapshot.total_volume + 1, bid=417.0),
                              MS + 70, NOW))
    assert trade.trade_time_ms == MS + 70, "not the previous trade's time"
    assert quote.quote_time_ms == MS + 70, "never 0"


def test_quote_only_update_is_not_a_trade():
    book = EquityBook()
    snapshot = equities()[0]
    book.merge(snapshot, MS, NOW)
    trade, quote = trade_and_quote(book.merge(EquityUpdate(key=snapshot.key, bid=1.5), MS, NOW))
    assert trade is None and quote.bid == 1.5 and quote.ask == snapshot.ask


def test_keys_do_not_share_state_and_reset_forgets():
    book = EquityBook()
    msft, goog = equities()
    book.merge(msft, MS, NOW)
    book.merge(goog, MS, NOW)
    trade, _ = trade_and_quote(book.merge(EquityUpdate(key="MSFT", total_volume=msft.total_volume + 1), MS, NOW))
    assert trade.price == msft.last
    book.reset()
    trade, _ = trade_and_quote(book.merge(EquityUpdate(key="MSFT", total_volume=msft.total_volume + 2), MS, NOW))
    assert trade is None, "after a reset the next item is a fresh snapshot"


def test_volume_that_shrinks_on_a_later_day_starts_that_day():
    book = EquityBook()
    snapshot = equities()[0]
    book.merge(snapshot, MS, NOW)
    trade, _ = trade_and_quote(book.merge(EquityUpdate(key=snapshot.key, total_volume=40), MS + DAY_MS, NOW))
    assert trade.size == 40 and trade.day_volume == 40


def test_volume_that_shrinks_within_a_day_is_a_correction_not_a_trade():
    book = EquityBook()
    snapshot = equities()[0]
    book.merge(snapshot, MS, NOW)
    with pytest.raises(Incomplete) as shrank:
        book.merge(EquityUpdate(key=snapshot.key, total_volume=snapshot.total_volume - 10), MS + 1000, NOW)
    assert shrank.value.reason == "volume_shrank"
    trade, _ = trade_and_quote(book.merge(EquityUpdate(key=snapshot.key, total_volume=snapshot.total_volume - 5), MS + 2000, NOW))
    assert trade.size == 5, "the corrected volume is the new baseline"


def test_a_trade_before_any_price_cannot_be_completed():
    book = EquityBook()
    book.merge(EquityUpdate(key="SPY", total_volume=10), MS, NOW)
    with pytest.raises(Incomplete) as incomplete:
        book.merge(EquityUpdate(key="SPY", total_volume=20), MS, NOW)
    assert incomplete.value.reason == "no_price"


def options() -> list[OptionUpdate]:
    return captured("LEVELONE_OPTIONS")


@pytest.mark.parametrize("update", options(), ids=lambda u: u.key)
def test_option_snapshot_maps_every_field(update):
    (quote,) = OptionBook().merge(update, MS, NOW)
    assert quote.symbol == update.key
    assert (quote.underlying, quote.contract_type, quote.strike) == (update.underlying, update.contract_type,
                                                                    update.strike)
    assert quote.expiration == "2024-05-17"
    assert (quote.bid, quote.ask, quote.last, quote.mark) == (update.bid, update.ask, update.last, update.mark)
    assert (quote.delta, quote.gamma, quote.theta, quote.vega, quote.rho) == (
        update.delta, update.gamma, update.theta, update.vega, update.rho)
    assert (quote.volatility, quote.open_interest) == (update.volatility, update.open_interest)
    assert (quote.underlying_price, quote.quote_time_ms) == (update.underlying_price, update.quote_time)


def test_option_update_keeps_unchanged_fields():
    book = OptionBook()
    snapshot = options()[0]
    book.merge(snapshot, MS, NOW)
    (quote,) = book.merge(OptionUpdate(key=snapshot.key, bid=99.5, delta=None), MS, NOW)
    assert quote.bid == 99.5 and quote.ask == snapshot.ask and quote.delta is None


def test_an_option_without_its_contract_terms_takes_them_from_its_key():
    bare = OptionUpdate(key="SPXW  261130P06000500", bid=1.25, ask=1.35)
    (quote,) = OptionBook().merge(bare, MS, NOW)
    assert (quote.underlying, quote.contract_type, quote.strike, quote.expiration) == (
        "$SPX", "P", 6000.5, "2026-11-30"), "an index's root names its index"
    assert quote.quote_time_ms == MS, "no quote time of its own: the frame's"


@pytest.mark.parametrize("bar", captured("CHART_EQUITY"), ids=lambda b: b.key)
def test_chart_items_become_bars(bar: ChartItem):
    (record,) = BarBook().merge(bar, bar.start_ms, NOW)
    assert (record.symbol, record.start_ms, record.chart_sequence) == (bar.key, bar.start_ms, bar.sequence)
    assert (record.open, record.high, record.low, record.close, record.volume) == (
        bar.open, bar.high, bar.low, bar.close, bar.volume)
    assert structs.asdict(record)["received_ns"] == NOW


def test_an_index_is_a_level_each_time_it_moves_and_never_a_trade_or_a_quote():
    book = EquityBook()
    snapshot = EquityUpdate(key="$SPX", bid=None, ask=None, last=6001.25, bid_size=0, ask_size=0, total_volume=0,
                            trade_time=MS - 900)
    assert book.merge(snapshot, MS, NOW) == (IndexLevel("$SPX", MS - 900, 6001.25, NOW),), "the level as it stands"
    assert book.merge(EquityUpdate(key="$SPX", last=6002.5), MS + 1000, NOW) == (
        IndexLevel("$SPX", MS + 1000, 6002.5, NOW),), "no time of its own: the frame's"
    assert book.merge(EquityUpdate(key="$SPX", total_volume=5, bid=1.0), MS + 2000, NOW) == (), \
        "an index's volume or book makes nothing"


def test_a_futures_trade_is_in_its_active_contract_and_its_volume_restarts_at_18_new_york():
    book = FuturesBook()
    monday_1730 = 1_796_682_600_000  # 2026-12-07 17:30 New York (EST)
    snapshot = FuturesUpdate(key="/ES", bid=6020.0, ask=6020.25, last=6020.25, bid_size=5, ask_size=7,
                             total_volume=1_500_000, last_size=2, active_symbol="/ESZ26")
    book.merge(snapshot, monday_1730 - 60 * 60_000, NOW)
    trade, _ = trade_and_quote(book.merge(FuturesUpdate(key="/ES", last=6021.0, total_volume=1_500_003),
                                          monday_1730 - 30 * 60_000, NOW))
    assert (trade.symbol, trade.contract, trade.size, trade.day_volume) == ("/ES", "/ESZ26", 3, 1_500_003)
    # 18:00 opens Tuesday's CME day: the count restarts, and the new count is the new day's first trades.
    trade, _ = trade_and_quote(book.merge(FuturesUpdate(key="/ES", last=6022.0, total_volume=40),
                                          monday_1730 + 35 * 60_000, NOW))
    assert (trade.size, trade.day_volume) == (40, 40)
    with pytest.raises(Incomplete) as shrank:
        book.merge(FuturesUpdate(key="/ES", total_volume=30), monday_1730 + 40 * 60_000, NOW)
    assert shrank.value.reason == "volume_shrank", "within the CME day a shrinking count is a correction"
    explicit = FuturesBook()
    explicit.merge(FuturesUpdate(key="/NQH27", last=21100.0, total_volume=10), monday_1730, NOW)
    trade, _ = trade_and_quote(explicit.merge(FuturesUpdate(key="/NQH27", total_volume=12), monday_1730 + 1, NOW))
    assert trade.contract == "/NQH27", "an explicit contract is its own"
