from common.delivery import StreamPositions
from common.messages import Envelope


def frame(epoch: int, seq: int, stream: str = "ingest/trade/SPY") -> Envelope:
    return Envelope(stream, epoch, seq, 0, [])


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


def test_take_advances_and_commit_hands_over_only_new_positions():
    positions = StreamPositions({"a": (1, 1)})
    positions.take(frame(1, 2, "a"))
    positions.take(frame(1, 3, "a"))
    positions.take(frame(2, 1, "b"))
    assert positions.classify(frame(1, 3, "a")) == "had"
    assert positions.committed() == {"a": (1, 3), "b": (2, 1)}
    assert positions.committed() == {}
