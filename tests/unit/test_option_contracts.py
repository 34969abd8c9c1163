"""The option contracts ingest streams: wishes to a union, moved by difference, within Schwab's limits."""

from __future__ import annotations

import asyncio

import pytest
from schwab.streaming import UnexpectedResponseCode

from common.feed.option_contracts import (
    OptionContracts,
    apply_option_changes,
    take_wishes,
)
from common.transport.messages import Heartbeat, OptionSubscription
from tests.helpers.fake_stream import Control, FakeStream, LogLines, coded

A, B, C, D = "SPY   260320C00500000", "SPY   260320P00500000", "QQQ   260320C00400000", "QQQ   260320P00400000"


def wish(underlying: str, *contracts: str) -> OptionSubscription:
    return OptionSubscription(underlying, list(contracts), 0)


def applied(stream: FakeStream, contracts: OptionContracts, log: LogLines) -> list[tuple[str, list[str]]]:
    """What one round of changes sent."""
    before = len(stream.sent)
    asyncio.run(apply_option_changes(stream, contracts, log.logger, timeout=1.0))  # type: ignore[arg-type]
    return stream.sent[before:]


def test_the_target_is_the_union_of_every_underlyings_wish():
    contracts = OptionContracts(max_keys=500)
    contracts.want(wish("SPY", A, B))
    contracts.want(wish("QQQ", C))
    assert contracts.changes() == ([C, A, B], [])
    contracts.want(wish("SPY", B))
    assert contracts.target() == {B, C}


def test_the_wishes_on_the_control_channel_are_all_taken_and_heartbeats_passed_over():
    control, contracts = Control(), OptionContracts(max_keys=500)
    control.send("SPY", A)
    control.send("SPY", A, B)
    control.send("QQQ", C)
    control.frames.insert(1, Heartbeat("options", 1, 0, {}))  # type: ignore[arg-type]
    take_wishes(control.receive, contracts)
    assert contracts.wanted == {"SPY": {A, B}, "QQQ": {C}} and not control.frames


def test_only_the_difference_is_sent_and_nothing_when_there_is_none():
    stream, contracts, log = FakeStream(), OptionContracts(max_keys=500), LogLines("test.options")
    contracts.want(wish("SPY", A, B))
    assert applied(stream, contracts, log) == [("level_one_option_subs", [A, B])]
    contracts.want(wish("SPY", B, C))
    assert applied(stream, contracts, log) == [("level_one_option_unsubs", [A]), ("level_one_option_add", [C])]
    assert applied(stream, contracts, log) == []
    assert contracts.streaming == {B, C}
    assert [r.streaming for r in log.named("option contracts changed")] == [2, 2]


def test_more_than_the_limit_is_cut_and_not_asked_for_again():
    stream, contracts, log = FakeStream(), OptionContracts(max_keys=2), LogLines("test.options")
    contracts.want(wish("SPY", A, B, C))
    assert applied(stream, contracts, log) == [("level_one_option_subs", [C, A])]
    assert log.named("option contracts over Schwab's per-service limit; asking for fewer")[0].over_by == 1
    assert applied(stream, contracts, log) == []
    contracts.want(wish("SPY", A))
    assert applied(stream, contracts, log) == [("level_one_option_unsubs", [C])]


def test_code_19_keeps_what_streams_and_waits_for_a_new_wish():
    stream = FakeStream(errors={"level_one_option_add": coded(19, "symbol limit")})
    contracts, log = OptionContracts(max_keys=500), LogLines("test.options")
    contracts.want(wish("SPY", A))
    applied(stream, contracts, log)
    contracts.want(wish("QQQ", C, D))
    assert applied(stream, contracts, log) == [("level_one_option_add", [C, D])]
    [refused] = log.named("Schwab refused option contracts over its symbol limit (code 19); streaming the rest")
    assert contracts.streaming == {A} and refused.reason == "symbol limit"
    assert applied(stream, contracts, log) == [], "the refused set is not asked for again"
    contracts.want(wish("QQQ", C))
    assert applied(stream, contracts, log) == [("level_one_option_add", [C])]


def test_another_code_ends_the_connection():
    stream, contracts = FakeStream(errors={"level_one_option_subs": coded(11)}), OptionContracts(max_keys=500)
    contracts.want(wish("SPY", A))
    with pytest.raises(UnexpectedResponseCode):
        applied(stream, contracts, LogLines("test.options"))


def test_a_restart_asks_for_everything_again_even_what_was_refused():
    contracts = OptionContracts(max_keys=500)
    contracts.want(wish("SPY", A, B))
    contracts.streaming, contracts.refused = frozenset({A}), frozenset({A, B})
    assert contracts.changes() == ([], [])
    contracts.restart()
    assert contracts.changes() == ([A, B], [])
