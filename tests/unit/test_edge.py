"""The edge decoder on every captured frame, and on bad items: each refused with its reason, the rest kept."""

from __future__ import annotations

import json
import logging
from typing import Any

import msgspec
import pytest

from common.feed import edge
from common.feed.services import SERVICES
from common.feed.edge import LogLimiter, decode
from common.feed.streamer import CheckedDecoder
from tests.helpers.schwab_frames import raw_frames

#: Fields whose 0 the edge reads as "none": a quote of 0 is no quote.
NO_QUOTE_AT_ZERO = {"bid", "ask", "last", "mark", "indicative_bid", "indicative_ask", "indicative_time"}
FRAME_MS = 1_764_600_000_000  # 2025-12-01 14:40 UTC
GOOD_EQUITY = {"key": "SPY", "1": 580.1, "2": 580.2, "3": 580.15, "4": 3, "5": 4, "8": 1_000_000, "9": 100,
               "34": FRAME_MS - 5, "35": FRAME_MS - 7}
GOOD_OPTION = {"key": "SPY   251201C00580000", "2": 1.2, "3": 1.3, "4": 1.25, "8": 10, "9": 200, "10": 18.5,
               "28": 0.5, "35": 580.15, "37": 1.25, "38": FRAME_MS - 9}
GOOD_BAR = {"key": "SPY", "1": 7, "2": 580.0, "3": 580.5, "4": 579.9, "5": 580.2, "6": 1200.0, "7": FRAME_MS - 60_000}


def frame(service: str, *items: Any, timestamp: int = FRAME_MS) -> msgspec.Raw:
    return msgspec.Raw(json.dumps([{"service": service, "timestamp": timestamp, "command": "SUBS",
                                    "content": list(items)}]).encode())


@pytest.mark.parametrize("service", ["LEVELONE_EQUITIES", "LEVELONE_OPTIONS", "CHART_EQUITY"])
def test_every_captured_frame_decodes_whole(service):
    entries = raw_frames()[service]
    decoded = decode(msgspec.Raw(json.dumps(entries).encode()))
    assert decoded.rejections == []
    assert [len(entry.updates) for entry in decoded.entries] == [len(entry["content"]) for entry in entries]
    for entry, captured in zip(decoded.entries, entries, strict=True):
        assert entry.frame_ms == captured["timestamp"]
        assert [update.key for update in entry.updates] == [item["key"] for item in captured["content"]]
        for update, item in zip(entry.updates, captured["content"], strict=True):
            for name, field in SERVICES[service].fields.items():
                if str(field.value) in item:
                    sent = item[str(field.value)]
                    # Schwab's 0 for a quote (or an indicative quote's time) is no quote.
                    expected = None if sent == 0 and name in NO_QUOTE_AT_ZERO else sent
                    assert getattr(update, name) == expected, (name, item)


def with_field(item: dict, **fields: Any) -> dict:
    return {**item, **fields}


BAD = [
    # (service, bad item, reason)
    ("LEVELONE_EQUITIES", with_field(GOOD_EQUITY, **{"3": "abc"}), "bad_type"),
    ("LEVELONE_EQUITIES", with_field(GOOD_EQUITY, **{"35": "2025-12-01T14:40"}), "bad_type"),
    ("LEVELONE_EQUITIES", with_field(GOOD_EQUITY, **{"3": "NaN"}), "bad_type"),
    ("LEVELONE_EQUITIES", with_field(GOOD_EQUITY, **{"3": -580.15}), "price_out_of_range"),
    ("LEVELONE_EQUITIES", with_field(GOOD_EQUITY, **{"3": 1e300}), "price_out_of_range"),
    ("LEVELONE_EQUITIES", with_field(GOOD_EQUITY, **{"1": -1.0}), "price_out_of_range"),
    ("LEVELONE_EQUITIES", with_field(GOOD_EQUITY, **{"8": True}), "bad_type"),
    ("LEVELONE_EQUITIES", with_field(GOOD_EQUITY, **{"8": 10.5}), "bad_type"),
    ("LEVELONE_EQUITIES", with_field(GOOD_EQUITY, **{"9": -100}), "size_invalid"),
    ("LEVELONE_EQUITIES", with_field(GOOD_EQUITY, **{"35": 0}), "time_out_of_range"),
    ("LEVELONE_EQUITIES", with_field(GOOD_EQUITY, **{"34": FRAME_MS + 3_600_000}), "time_out_of_range"),
    ("LEVELONE_EQUITIES", with_field(GOOD_EQUITY, key="S" * 5000), "key_implausible"),
    ("LEVELONE_EQUITIES", with_field(GOOD_EQUITY, key="spy"), "key_implausible"),
    ("LEVELONE_EQUITIES", with_field(GOOD_EQUITY, key="SP Y"), "key_implausible"),
    ("LEVELONE_EQUITIES", with_field(GOOD_EQUITY, key=42), "bad_type"),
    ("LEVELONE_EQUITIES", {"3": 580.15}, "bad_type"),
    ("LEVELONE_EQUITIES", "SPY", "bad_type"),
    ("LEVELONE_OPTIONS", with_field(GOOD_OPTION, key="SPY 251201C580"), "key_implausible"),
    ("LEVELONE_OPTIONS", with_field(GOOD_OPTION, **{"21": "X"}), "contract_terms"),
    ("LEVELONE_OPTIONS", with_field(GOOD_OPTION, **{"21": "P"}), "contract_terms"),
    ("LEVELONE_OPTIONS", with_field(GOOD_OPTION, **{"12": 2025, "23": 2, "26": 30}), "contract_terms"),
    ("LEVELONE_OPTIONS", with_field(GOOD_OPTION, **{"20": 0}), "price_out_of_range"),
    ("LEVELONE_OPTIONS", with_field(GOOD_OPTION, **{"28": "0.5"}), "bad_type"),
    ("LEVELONE_OPTIONS", with_field(GOOD_OPTION, **{"10": -5.0}), "greek_invalid"),
    ("LEVELONE_OPTIONS", with_field(GOOD_OPTION, **{"9": False}), "bad_type"),
    ("CHART_EQUITY", with_field(GOOD_BAR, **{"3": 579.0}), "bar_inconsistent"),
    ("CHART_EQUITY", with_field(GOOD_BAR, **{"6": -1.0}), "size_invalid"),
    ("CHART_EQUITY", {k: v for k, v in GOOD_BAR.items() if k != "5"}, "bad_type"),
    ("CHART_EQUITY", with_field(GOOD_BAR, **{"7": FRAME_MS * 1000}), "time_out_of_range"),
]
GOOD = {"LEVELONE_EQUITIES": GOOD_EQUITY, "LEVELONE_OPTIONS": GOOD_OPTION, "CHART_EQUITY": GOOD_BAR}


@pytest.mark.parametrize("service, item, reason", BAD, ids=[f"{s}-{r}-{i}" for i, (s, _, r) in enumerate(BAD)])
def test_a_bad_item_is_refused_with_its_reason_and_its_neighbours_kept(service, item, reason):
    good = GOOD[service]
    decoded = decode(frame(service, good, item, with_field(good, key=good["key"].replace("SPY", "QQQ"))))
    assert [(r.service, r.reason) for r in decoded.rejections] == [(service, reason)], decoded.rejections
    assert [update.key for update in decoded.entries[0].updates] == [good["key"], good["key"].replace("SPY", "QQQ")]
    assert len(decoded.rejections[0].excerpt) <= edge.EXCERPT + 1


def test_zero_quotes_mean_no_quote_and_not_computed_greeks_none():
    (update,) = decode(frame("LEVELONE_EQUITIES", with_field(GOOD_EQUITY, **{"1": 0, "2": 0.0}))).entries[0].updates
    assert update.bid is None and update.ask is None and update.last == 580.15
    (option,) = decode(frame("LEVELONE_OPTIONS", with_field(GOOD_OPTION, **{"28": -999.0, "2": 0}))).entries[0].updates
    assert option.delta is None and option.bid is None


def test_entries_that_cannot_be_read_are_refused_whole():
    decoded = decode(msgspec.Raw(json.dumps([
        {"service": "NEWS_HEADLINE", "timestamp": FRAME_MS, "content": [{"key": "SPY"}]},
        {"service": "LEVELONE_EQUITIES", "content": [GOOD_EQUITY]},
        {"service": "LEVELONE_EQUITIES", "timestamp": -1, "content": [GOOD_EQUITY]},
        {"service": "LEVELONE_EQUITIES", "timestamp": FRAME_MS, "content": [GOOD_EQUITY]},
    ]).encode()))
    assert [r.reason for r in decoded.rejections] == ["service_not_subscribed", "entry_malformed", "frame_time"]
    assert [len(entry.updates) for entry in decoded.entries] == [1]
    assert [r.reason for r in decode(msgspec.Raw(b'{"not": "a list"}')).rejections] == ["entry_malformed"]


def test_json_without_nan_is_read_leniently_so_the_good_items_still_count():
    """`NaN` is not JSON, and once cost its whole message: the decoder reads it, and the item alone goes."""
    handed: list = []
    text = ('{"data": [{"service": "LEVELONE_EQUITIES", "timestamp": %d, "content": '
            '[%s, {"key": "QQQ", "3": NaN}]}]}' % (FRAME_MS, json.dumps(GOOD_EQUITY)))
    CheckedDecoder(handed.append, logging.getLogger("test"), list).decode_json_string(text)
    decoded = decode(handed[0])
    assert [update.key for update in decoded.entries[0].updates] == ["SPY"]
    assert [(r.key, r.reason) for r in decoded.rejections] == [("QQQ", "price_not_finite")]


def test_the_log_limit_is_once_a_minute_per_symbol_and_reason_in_bounded_memory():
    limiter = LogLimiter(every=60.0, most=3)
    assert limiter.allow("SPY", "bad_type", 0.0) and not limiter.allow("SPY", "bad_type", 59.0)
    assert limiter.allow("SPY", "key_implausible", 1.0) and limiter.allow("QQQ", "bad_type", 1.0)
    assert limiter.allow("SPY", "bad_type", 60.0)
    for key in ("A", "B", "C", "D"):
        limiter.allow(key, "bad_type", 61.0)
    assert len(limiter) == 3
