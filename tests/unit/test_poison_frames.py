"""One frame with an absurd timestamp or value is refused and counted; it never poisons what comes after it.

Issue 25, item 14: a live frame far from the receive clock is refused at the
edge, every per-item failure is a counted rejection (never an escape that
drops the connection), volumes and strikes no market has are refused, a zero
price loses no shares, and bar repair survives whatever its fetch raises and
gives up on a gap it cannot fetch.
"""

from __future__ import annotations

import json
import logging

import httpx
import msgspec
import pytest

from common.feed import checks, edge, option_symbols
from common.feed.bar_repair import MAX_ATTEMPTS, BarGap, PendingGaps
from common.feed.levelone import Incomplete, NewYorkDay
from common.feed.services.chart_equity import NAME as CHART_EQUITY
from common.feed.services.levelone_equities import MAX_VOLUME_JUMP, EquityBook, EquityUpdate
from common.feed.services.levelone_equities import NAME as LEVELONE_EQUITIES
from common.feed.services.levelone_options import NAME as LEVELONE_OPTIONS
from tests.helpers.poison_frames import (
    MINUTE_MS,
    PAST_9999_MS,
    YEAR_9892_MS,
    bar,
    data,
    decoded_at,
    entry,
    epoch_ms,
    equity,
    option,
    published_at,
    reasons,
    stream_bar,
)
from tests.helpers.records import trade_and_quote
from tests.helpers.schwab_frames import raw_frames
from tests.helpers.scripted_history import ScriptedHistory, candles, one_turn, repairer

#: The receive clock of these tests: 2026-12-07 14:40 UTC, a Monday.
NOW_MS = epoch_ms(2026, 12, 7) + (14 * 60 + 40) * MINUTE_MS
NOW_NS = NOW_MS * 1_000_000


# ---- the frame's own timestamp, against the receive clock ---------------------------------------------------


def test_a_live_frame_stamped_in_year_9892_is_refused_at_the_edge_with_why():
    poison = equity("SPY", last=580.0, total_volume=1000, trade_time=YEAR_9892_MS)
    decoded = decoded_at(NOW_MS, entry(LEVELONE_EQUITIES, YEAR_9892_MS, poison))
    assert decoded.entries == [] and reasons(decoded) == ["frame_in_future"]
    assert "9892-03-04" in decoded.rejections[0].detail and "ahead of this host's clock" in decoded.rejections[0].detail


def test_a_live_frame_more_than_a_day_behind_the_clock_is_refused():
    stale = NOW_MS - edge.FRAME_BEHIND - 1
    decoded = decoded_at(NOW_MS, entry(LEVELONE_EQUITIES, stale, equity("SPY", last=580.0, trade_time=stale)))
    assert decoded.entries == [] and reasons(decoded) == ["frame_too_old"]


def test_a_live_frame_within_the_bounds_passes():
    for stamp in (NOW_MS + edge.FRAME_AHEAD, NOW_MS - edge.FRAME_BEHIND):
        decoded = decoded_at(NOW_MS, entry(LEVELONE_EQUITIES, stamp, equity("SPY", last=580.0, trade_time=stamp)))
        assert decoded.rejections == [] and len(decoded.entries[0].updates) == 1, stamp


def test_a_replayed_recording_is_not_refused_for_being_old_but_is_for_a_time_after_the_clock():
    recorded = [decoded_at(NOW_MS, *entries, live=False) for entries in raw_frames().values()]
    assert all(decoded.rejections == [] and decoded.entries for decoded in recorded), "May 2024, replayed in 2026"
    future = decoded_at(NOW_MS, entry(LEVELONE_EQUITIES, YEAR_9892_MS, equity("SPY", last=580.0)), live=False)
    assert reasons(future) == ["frame_in_future"], "no recording holds a frame from after it was replayed"


def test_after_a_poison_frame_the_next_trades_are_published_and_the_poison_counted():
    poison = data(entry(LEVELONE_EQUITIES, YEAR_9892_MS, equity("SPY", last=580.0, total_volume=1000)),
                  entry(LEVELONE_EQUITIES, PAST_9999_MS, equity("SPY", last=580.0, total_volume=2000)))
    good = [data(entry(LEVELONE_EQUITIES, NOW_MS, equity("SPY", last=580.0, total_volume=5000))),
            data(entry(LEVELONE_EQUITIES, NOW_MS + 500, equity("SPY", total_volume=5300)))]
    kept, frames = published_at(NOW_NS, True, poison, *good)
    assert frames.stats.rejections == {"frame_in_future": 2}
    assert [(t.size, t.price, t.trade_time_ms) for t in kept.records("trade")] == [(300, 580.0, NOW_MS + 500)]


def test_an_unforeseen_failure_of_one_item_is_a_counted_rejection_never_an_escape():
    def on_bar(_) -> None:
        raise RuntimeError("a bug downstream of the edge")

    bars = data(entry(CHART_EQUITY, NOW_MS, bar("SPY", NOW_MS - MINUTE_MS)),
                entry(LEVELONE_EQUITIES, NOW_MS, equity("SPY", last=580.0, total_volume=5000)))
    kept, frames = published_at(NOW_NS, True, bars, on_bar=on_bar)
    assert frames.stats.rejections == {"item_failed": 1} and kept.records("bar") == [], "counted, not published"
    assert frames.stats.records_in == 2, "the other item of the message went on"


# ---- values no market has ----------------------------------------------------------------------------------


def test_an_osi_key_with_a_zero_strike_is_refused():
    with pytest.raises(ValueError, match="strike"):
        option_symbols.parse("SPY   261218C00000000")
    decoded = decoded_at(NOW_MS, entry(LEVELONE_OPTIONS, NOW_MS, option("SPY   261218C00000000", NOW_MS - 5),
                                       option("SPY   261218C00580000", NOW_MS - 5)))
    assert reasons(decoded) == ["key_implausible"] and len(decoded.entries[0].updates) == 1


@pytest.mark.parametrize("item, reason", [
    (bar("SPY", NOW_MS - MINUTE_MS, volume=1e300), "size_implausible"),
    (bar("SPY", NOW_MS - MINUTE_MS, volume=checks.VOLUME_CEILING * 1.5), "size_implausible"),
    (bar("SPY", NOW_MS - MINUTE_MS, sequence=10**30), "size_implausible"),
    (bar("SPY", NOW_MS - MINUTE_MS, sequence=-1), "size_invalid"),
], ids=["volume 1e300", "volume past the ceiling", "sequence 1e30", "negative sequence"])
def test_a_bar_volume_or_sequence_no_market_has_is_refused(item, reason):
    decoded = decoded_at(NOW_MS, entry(CHART_EQUITY, NOW_MS, item))
    assert reasons(decoded) == [reason]


@pytest.mark.parametrize("field", ["total_volume", "bid_size", "last_size"])
def test_an_equity_count_past_the_ceiling_is_refused(field):
    number = {"total_volume": "8", "bid_size": "4", "last_size": "9"}[field]
    decoded = decoded_at(NOW_MS, entry(LEVELONE_EQUITIES, NOW_MS, {"key": "SPY", number: 10**30}))
    assert reasons(decoded) == ["size_implausible"] and field in decoded.rejections[0].detail


def test_an_expiry_no_calendar_holds_is_a_rejection_not_an_escape():
    terms = {**option("SPY   261218C00580000", NOW_MS - 5), "12": 10**30, "23": 12, "26": 18}
    assert reasons(decoded_at(NOW_MS, entry(LEVELONE_OPTIONS, NOW_MS, terms))) == ["contract_terms"]


# ---- the volume baseline a trade's size is derived from ------------------------------------------------------


def test_a_last_price_of_zero_loses_no_shares():
    book = EquityBook()
    book.merge(EquityUpdate(key="SPY", last=580.0, total_volume=1000), NOW_MS, NOW_NS)
    assert book.merge(EquityUpdate(key="SPY", last=None), NOW_MS + 1, NOW_NS) == (), \
        "Schwab's 0 (the edge's None): no price to give, not a trade"
    trade, _ = trade_and_quote(book.merge(EquityUpdate(key="SPY", total_volume=1100), NOW_MS + 2, NOW_NS))
    assert (trade.size, trade.price, trade.day_volume) == (100, 580.0, 1100)


def test_volume_that_grew_before_any_price_is_the_next_priced_trades():
    book = EquityBook()
    book.merge(EquityUpdate(key="SPY", last=None, total_volume=1000), NOW_MS, NOW_NS)
    with pytest.raises(Incomplete) as no_price:
        book.merge(EquityUpdate(key="SPY", total_volume=1050), NOW_MS + 1, NOW_NS)
    assert no_price.value.reason == "no_price"
    trade, _ = trade_and_quote(book.merge(EquityUpdate(key="SPY", last=580.0, total_volume=1060), NOW_MS + 2, NOW_NS))
    assert (trade.size, trade.day_volume) == (60, 1060), "the baseline did not move without a price"


def test_a_total_volume_jump_past_the_bound_is_refused_and_counted_and_the_feed_recovers():
    start, jump = 1_000_000, 1_000_000 + MAX_VOLUME_JUMP + 1
    messages = [data(entry(LEVELONE_EQUITIES, NOW_MS + n, equity("SPY", **fields))) for n, fields in enumerate((
        {"last": 580.0, "total_volume": start},
        {"total_volume": start + MAX_VOLUME_JUMP},  # the largest a trade may be: taken
        {"total_volume": jump + MAX_VOLUME_JUMP},  # damage: refused, and Schwab's count is the baseline
        {"total_volume": start + MAX_VOLUME_JUMP + 40},  # Schwab's honest count again: a correction
        {"total_volume": start + MAX_VOLUME_JUMP + 70},
    ))]
    kept, frames = published_at(NOW_NS, True, *messages)
    assert frames.stats.rejections == {"volume_jump": 1, "volume_shrank": 1}
    assert [t.size for t in kept.records("trade")] == [MAX_VOLUME_JUMP, 30]


@pytest.mark.parametrize("ms", [PAST_9999_MS, epoch_ms(9999, 12, 31) + 23 * 3_600_000, 10**30],
                         ids=["year 11476", "the last day of 9999 (it has no next)", "1e30"])
def test_new_york_day_refuses_a_time_no_calendar_holds_by_name(ms):
    day = NewYorkDay()
    with pytest.raises(Incomplete) as out_of_range:
        day(ms)
    assert out_of_range.value.reason == "time_out_of_range"
    assert day(NOW_MS) == day(NOW_MS + 1), "and goes on"


# ---- bar repair: supervised, bounded, and giving up ------------------------------------------------------------

#: Half an hour before the clock: bar repair's gaps start here.
T = NOW_MS - 30 * MINUTE_MS


def test_an_unforeseen_failure_of_a_fetch_is_logged_and_the_repair_goes_on(caplog):
    client = ScriptedHistory(*[RuntimeError("a bug in a fetch")] * MAX_ATTEMPTS, candles("QQQ", T + MINUTE_MS))
    repair, sent = repairer(client, {"SPY": T, "QQQ": T}, NOW_MS, logging.getLogger("test.poison.repair"))
    repair.seen(stream_bar("SPY", T + 5 * MINUTE_MS))
    repair.seen(stream_bar("QQQ", T + 2 * MINUTE_MS))
    with caplog.at_level(logging.WARNING):
        for _ in range(MAX_ATTEMPTS):
            one_turn(repair)
    assert "a bug in a fetch" in caplog.text and "Traceback" in caplog.text, "never silent"
    assert list(repair.pending) == [BarGap("QQQ", T, T + 2 * MINUTE_MS)], "SPY's gap given up"
    assert repair.stats.rejections == {"gap_unrepaired": 1}
    assert any(r.getMessage().startswith("bar repair gave up") for r in caplog.records)
    one_turn(repair)
    assert [b.symbol for _, bars in sent for b in bars] == ["QQQ"] and not repair.pending


def test_a_fetch_that_keeps_failing_is_given_up_after_max_attempts_not_retried_for_ever(caplog):
    client = ScriptedHistory(*[httpx.ConnectError("refused")] * MAX_ATTEMPTS)
    repair, sent = repairer(client, {"SPY": T}, NOW_MS, logging.getLogger("test.poison.repair"))
    repair.seen(stream_bar("SPY", T + 5 * MINUTE_MS))
    with caplog.at_level(logging.WARNING):
        for attempt in range(1, MAX_ATTEMPTS):
            one_turn(repair)
            assert len(repair.pending) == 1, f"still trying after {attempt} failures"
        one_turn(repair)
    assert not repair.pending and sent == [] and repair.stats.rejections == {"gap_unrepaired": 1}
    assert len(client.asked) == MAX_ATTEMPTS and "make backfill" in caplog.text


def test_a_far_future_gap_kept_by_an_earlier_run_is_dropped_at_start_with_why(tmp_path, caplog):
    path = tmp_path / "bar_gaps.json"
    path.write_bytes(msgspec.json.encode([BarGap("SPY", T, YEAR_9892_MS), BarGap("SPY", PAST_9999_MS, 10**20),
                                          BarGap("QQQ", T, T + 3 * MINUTE_MS)]))
    logger = logging.getLogger("test.poison.repair")
    with caplog.at_level(logging.WARNING):
        repair, _ = repairer(ScriptedHistory(), {}, NOW_MS, logger, kept=PendingGaps(path, logger))
    assert list(repair.pending) == [BarGap("QQQ", T, T + 3 * MINUTE_MS)]
    assert repair.stats.rejections == {"gap_implausible": 2}
    assert [(r.levelname, r.before) for r in caplog.records] == [("ERROR", "9892-03-04T00:00:00+00:00"),
                                                                  ("ERROR", f"{10**20} ms after 1970")]
    assert json.loads(path.read_text()) == [{"symbol": "QQQ", "after_ms": T, "before_ms": T + 3 * MINUTE_MS}]


def test_a_far_future_bar_in_the_journal_does_not_blind_gap_detection(caplog):
    with caplog.at_level(logging.WARNING):
        repair, _ = repairer(ScriptedHistory(), {"SPY": YEAR_9892_MS, "QQQ": T}, NOW_MS,
                             logging.getLogger("test.poison.repair"))
    assert repair.gaps.newest == {"QQQ": T} and [r.ticker for r in caplog.records] == ["SPY"]
    repair.seen(stream_bar("SPY", T + MINUTE_MS))
    repair.seen(stream_bar("SPY", T + 5 * MINUTE_MS))
    assert list(repair.pending) == [BarGap("SPY", T + MINUTE_MS, T + 5 * MINUTE_MS)], "detected again"
