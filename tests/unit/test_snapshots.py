"""Option snapshots: the rule of common/store/snapshots.py, on hand-made streams, and replay from resume_after."""

from __future__ import annotations

import random

import pytest

from common.store.snapshots import CLOSE_GRACE_NS, Snapshots
from tests.helpers.snapshots import Quote, expected_snapshots

S = 1_000_000_000
MINUTE = 60 * S


def frames(*times: tuple[str, float]) -> list[tuple[list[Quote], tuple[int, int]]]:
    """One frame per (symbol, seconds) given, seq from 1."""
    return [([Quote(symbol, round(seconds * S))], (1, seq)) for seq, (symbol, seconds) in enumerate(times, 1)]


def test_each_contract_gets_its_last_quote_of_each_interval_once_the_stream_passes_it():
    snapshots = Snapshots(MINUTE)
    closed = []
    for records, position in frames(("A", 1), ("B", 2), ("A", 59), ("A", 61), ("B", 125)):
        closed += snapshots.add(records, position)
    assert [(start // S, quote.symbol, quote.received_ns // S) for start, quote in closed] == [
        (0, "A", 59), (0, "B", 2), (60, "A", 61)]
    assert [quote.symbol for quote in snapshots.pending.values()] == ["B"], "minute 2 is still open"
    assert snapshots.resume_after == (1, 4), "a replay starts after the frame that closed minute 1"


def test_a_contract_with_no_quote_in_an_interval_gets_no_row_and_no_interval_is_invented():
    closed = []
    snapshots = Snapshots(MINUTE)
    for records, position in frames(("A", 1), ("A", 400), ("A", 401), ("B", 500)):
        closed += snapshots.add(records, position)
    assert [(start // S, quote.symbol) for start, quote in closed] == [(0, "A"), (360, "A")]


def test_a_quote_stamped_before_the_streams_time_joins_the_open_interval_never_a_closed_one():
    snapshots = Snapshots(MINUTE)
    closed = []
    for records, position in frames(("A", 30), ("B", 65), ("A", 50)):  # the clock stepped back before the last
        closed += snapshots.add(records, position)
    assert [(start // S, quote.symbol) for start, quote in closed] == [(0, "A")]
    assert {symbol: quote.received_ns // S for symbol, quote in snapshots.pending.items()} == {"B": 65, "A": 50}


def test_a_quiet_stream_is_closed_by_its_publishers_later_word_after_the_grace_and_not_before():
    snapshots = Snapshots(MINUTE)
    snapshots.add([Quote("A", 10 * S)], (1, 1), sent_ns=10 * S)
    assert snapshots.close_quiet(MINUTE + CLOSE_GRACE_NS - 1) == []
    assert [quote.symbol for _, quote in snapshots.close_quiet(MINUTE + CLOSE_GRACE_NS)] == ["A"]
    assert snapshots.resume_after == (1, 1), "nothing is open: everything taken is stored"
    # A late quote stamped inside the closed minute goes to the next one, never back.
    snapshots.add([Quote("A", 59 * S)], (1, 2), sent_ns=MINUTE + CLOSE_GRACE_NS + 1)
    assert snapshots.open == 1


def test_a_stream_still_sending_is_not_closed_by_word_alone_as_when_a_recording_is_replayed():
    """A replay sends quotes stamped long ago: its publisher's send times are far past their minutes, but the
    stream keeps sending, so only its own time closes them (and each quote stays in its own minute)."""
    snapshots = Snapshots(MINUTE)
    replayed_at = 10_000 * MINUTE
    closed = []
    for n, seconds in enumerate((10, 20, 50, 70)):
        sent = replayed_at + n * S
        closed += snapshots.add([Quote("A", seconds * S)], (1, n + 1), sent_ns=sent)
        closed += snapshots.close_quiet(sent)
    assert [(start // S, quote.received_ns // S) for start, quote in closed] == [(0, 50)]


def test_a_frame_that_straddles_two_intervals_is_read_again_on_replay_and_gives_the_same_rows():
    snapshots = Snapshots(MINUTE, committed=(1, 0))
    first = snapshots.add([Quote("A", 10 * S)], (1, 1))
    straddling = snapshots.add([Quote("B", 59 * S), Quote("A", 61 * S)], (1, 2))
    assert first == [] and [(start, quote.symbol) for start, quote in straddling] == [(0, "A"), (0, "B")]
    assert snapshots.resume_after == (1, 1), "minute 1's first quote is in frame 2: replay from after frame 1"
    replay = Snapshots(MINUTE, committed=snapshots.resume_after)
    again = replay.add([Quote("B", 59 * S), Quote("A", 61 * S)], (1, 2))
    assert again == [(0, Quote("B", 59 * S))], "the same snapshot of B, skipped as stored; A's was stored before"


def test_interrupted_anywhere_and_replayed_from_the_committed_position_the_rows_equal_one_pass():
    """The property the writer relies on: kill it after any frame, restart from `resume_after`, and the union of
    the snapshots made equals one uninterrupted pass (and the pure recomputation)."""
    rng = random.Random(7)
    stream, now = [], 0
    for seq in range(1, 400):
        now += rng.randrange(0, 4 * S)
        stream.append(([Quote(rng.choice("ABCDE"), now + offset) for offset in range(rng.randrange(1, 4))],
                       (1, seq)))
    expected = expected_snapshots((record, position) for records, position in stream for record in records)
    for crash in (0, 1, 57, 200, 398):
        stored, resume = set(), None
        snapshots = Snapshots(MINUTE)
        for records, position in stream[:crash]:
            stored.update(snapshots.add(records, position))
        resume = snapshots.resume_after
        replayed = Snapshots(MINUTE, committed=resume)
        for records, position in stream:
            if resume is None or position > resume:
                stored.update(replayed.add(records, position))
        assert stored == expected, f"after a crash at frame {crash}"


def test_an_interval_must_be_positive():
    with pytest.raises(ValueError, match="positive"):
        Snapshots(0)
