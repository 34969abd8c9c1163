"""Sequence numbers and the one judge of what arrived, for exactly-once followers and late joiners alike."""

from common.transport.messages import Envelope, Heartbeat
from common.transport.sequence import Gap, Sequencer, StreamPositions


def frame(epoch: int, seq: int, stream: str = "ingest/trade/SPY") -> Envelope:
    return Envelope(stream, epoch, seq, 0, [])


def test_sequencer_counts_each_stream_from_one():
    sequencer = Sequencer(epoch=5)
    assert [sequencer.next("a"), sequencer.next("a"), sequencer.next("b")] == [1, 2, 1]
    assert sequencer.last_seqs == {"a": 2, "b": 1}


def test_positions_start_at_the_committed_offsets():
    positions = StreamPositions({"ingest/trade/SPY": (5, 10)})
    assert positions.classify(frame(5, 9)) == "had"
    assert positions.classify(frame(5, 10)) == "had"
    assert positions.classify(frame(5, 11)) == "next"
    assert positions.classify(frame(5, 13)) == "ahead"
    assert positions.classify(frame(4, 99)) == "had", "an older epoch is entirely behind"
    assert positions.classify(frame(6, 1)) == "ahead", "a new epoch may follow unseen frames of the old one"


def test_an_unknown_stream_starts_at_one():
    positions = StreamPositions({})
    assert positions.classify(frame(1, 1)) == "next"
    assert positions.classify(frame(1, 2)) == "ahead"
    assert positions.gap(frame(1, 4)) == Gap("ingest/trade/SPY", (1, 0), (1, 3)), "frames 1..3 never came"


def test_take_advances_and_commit_hands_over_only_new_positions():
    positions = StreamPositions({"a": (1, 1)})
    positions.take(frame(1, 2, "a"))
    positions.take(frame(1, 3, "a"))
    positions.take(frame(2, 1, "b"))
    assert positions.classify(frame(1, 3, "a")) == "had"
    assert positions.committed() == {"a": (1, 3), "b": (2, 1)}
    assert positions.committed() == {}


def test_a_gap_names_the_missing_range_and_a_restart_is_none():
    positions = StreamPositions({"s": (1, 5)})
    gap = positions.gap(frame(1, 9, "s"))
    assert (gap.after, gap.through, gap.count) == ((1, 5), (1, 8), 3)
    assert positions.gap(frame(2, 1, "s")) is None, "a restarted publisher's first frame loses nothing"
    assert positions.gap(frame(2, 4, "s")).count is None, "the old epoch's lost tail is of unknown length"


def test_a_late_joiner_takes_what_comes_and_reports_only_what_it_then_missed():
    positions = StreamPositions(late_join=True)
    assert positions.classify(frame(1, 4, "s")) == "next", "joining late is not a loss"
    positions.take(frame(1, 4, "s"))
    assert positions.classify(frame(1, 5, "s")) == "next"
    positions.take(frame(1, 5, "s"))
    assert positions.classify(frame(1, 9, "s")) == "ahead"
    assert positions.gap(frame(1, 9, "s")).count == 3
    positions.take(frame(1, 9, "s"))
    assert positions.classify(frame(1, 9, "s")) == "had", "a duplicate"
    assert positions.classify(frame(2, 7, "s")) == "next", "a new epoch restarts the count"


def test_a_heartbeat_reveals_frames_lost_before_a_quiet_period():
    late = StreamPositions(late_join=True)
    late.take(frame(1, 1, "s"))
    gaps = late.behind(Heartbeat("p", 1, 0, {"s": 3, "unseen": 8}))
    assert gaps == [Gap("s", (1, 1), (1, 3))], "a stream it never heard of was sent before it listened"
    late.skip(gaps[0])
    assert late.behind(Heartbeat("p", 1, 0, {"s": 3})) == []


def test_a_follower_is_behind_a_heartbeat_of_any_stream_it_has_not_reached():
    follower = StreamPositions({"s": (1, 3)})
    assert follower.behind(Heartbeat("p", 1, 0, {"s": 3})) == []
    assert follower.behind(Heartbeat("p", 2, 0, {"s": 1, "t": 2})) == [
        Gap("s", (1, 3), (2, 1)), Gap("t", (2, 0), (2, 2))], "a new epoch and an unseen stream: to catch up"
