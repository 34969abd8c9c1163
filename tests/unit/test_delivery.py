import time


from common.transport.delivery import (
    SharedOffsets,
    passed_by_all,
    share_offsets,
    shared_offsets,
)
from common.transport.journal import JournalWriter, prune
from common.transport.messages import Envelope, encode


def test_a_stream_is_passed_when_every_follower_has_passed_it(tmp_path):
    share_offsets(tmp_path / "writer.json", ("ingest/trade/",), {"ingest/trade/SPY": (2, 50)})
    share_offsets(tmp_path / "indicator.json", ("ingest/trade/", "ingest/bar/"),
                  {"ingest/trade/SPY": (2, 40), "ingest/bar/SPY": (2, 3)})
    follows, passed = passed_by_all(tmp_path)
    assert follows == ("ingest/bar/", "ingest/trade/")
    assert passed == {"ingest/trade/SPY": (2, 40), "ingest/bar/SPY": (2, 3)}
    share_offsets(tmp_path / "writer.json", ("ingest/trade/",), {})
    assert "ingest/trade/SPY" not in passed_by_all(tmp_path)[1], "a follower that has not reached it keeps it"


def test_segments_of_streams_nobody_follows_are_pruned_once_the_rest_is_passed(tmp_path):
    journal = tmp_path / "journal"
    writer = JournalWriter(journal, "ingest", 1, segment_bytes=200)
    for seq in range(1, 9):
        writer.append(encode(Envelope("ingest/trade/SPY", 1, seq, 0, [])))
        writer.append(encode(Envelope("ingest/quote/SPY", 1, seq, 0, [])))
    writer.close()
    segments = sorted(journal.iterdir())
    assert len(segments) >= 3
    later = time.time() + 10
    assert prune(journal, {}, 1, now=later).deleted == [], "without follows every stream must be committed"
    deleted = prune(journal, {"ingest/trade/SPY": (1, 8)}, 1, now=later, follows=("ingest/trade/",)).deleted
    assert deleted == segments[:-1], "quotes, which no consumer follows, keep nothing alive"


def test_an_offsets_file_is_read_typed_by_its_one_owner(tmp_path):
    path = tmp_path / "writer.json"
    assert shared_offsets(path) is None, "not shared yet"
    share_offsets(path, ("d/ingest/trade",), {"d/ingest/trade": (3, 41)})
    assert shared_offsets(path) == SharedOffsets(("d/ingest/trade",), {"d/ingest/trade": (3, 41)})
    path.write_text('{"follows": ["d/ingest/trade"], "positions": {"d/ingest/trade": [3, "x"]}}')
    assert shared_offsets(path) is None, "a file of the wrong shape is read as absent, never an exception a minute"
    assert path.with_name("writer.json.unreadable").exists(), "and set aside for a person to look at"
