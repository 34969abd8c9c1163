"""Envelope, seq and gap detection; then the same over real ZeroMQ sockets."""

import os
import subprocess
import time

import pytest

from common.bus import GapDetector, Publisher, Sequencer, Subscriber, presence_topic, topic
from common.config import load
from common.journal import read_envelopes
from common.stats import ActorStats
from common.messages import Envelope, EquityTrade, Heartbeat, decode_envelope, encode

TRADE = EquityTrade("SPY", 1, 500.25, 100, 1000, 100, 500.24, 500.26, 7)


def test_envelope_round_trips_with_its_records():
    envelope = Envelope("ingest/trade/SPY", 11, 3, 99, [TRADE, TRADE])
    assert decode_envelope(encode(envelope)) == envelope


def test_sequencer_counts_each_stream_from_one():
    sequencer = Sequencer(epoch=5)
    assert [sequencer.next("a"), sequencer.next("a"), sequencer.next("b")] == [1, 2, 1]
    assert sequencer.last_seqs == {"a": 2, "b": 1}


def test_gap_detector_reports_missing_range_and_duplicates():
    detector = GapDetector()
    assert detector.observe("s", 1, 4) is None, "joining late is not a loss"
    assert detector.observe("s", 1, 5) is None
    gap = detector.observe("s", 1, 9)
    assert (gap.first, gap.last, gap.count) == (6, 8, 3)
    assert detector.observe("s", 1, 9) is False
    assert detector.observe("s", 2, 1) is None, "a new epoch restarts the count"
    assert (detector.gaps, detector.duplicates) == (1, 1)


def test_heartbeat_reveals_frames_lost_before_a_quiet_period():
    detector = GapDetector()
    detector.observe("s", 1, 1)
    gaps = detector.observe_heartbeat(Heartbeat("p", 1, 0, {"s": 3, "unseen": 8}))
    assert [(g.stream, g.first, g.last) for g in gaps] == [("s", 2, 3)]
    assert detector.observe_heartbeat(Heartbeat("p", 1, 0, {"s": 3})) == []


@pytest.fixture
def config(tmp_path_factory):
    run = tmp_path_factory.mktemp("bus")
    return load({"RUN_DIR": str(run), "LOG_DIR": str(run), "DATA_DIR": str(run), "HEARTBEAT_INTERVAL": "50ms"})


def test_frames_and_heartbeats_cross_real_sockets(config):
    config.ensure_dirs()
    publisher = Publisher(config, "ingest")
    subscriber = Subscriber(config, "writer")
    subscriber.subscribe("ingest", "trade")
    try:
        assert publisher.wait_for_subscribers(["writer"], timeout=5) == []
        assert publisher.wait_for_subscribers(["nobody"], timeout=0.1) == ["nobody"]
        publisher.send("trade", "SPY", [TRADE])
        publisher.send("quote", "SPY", [])  # filtered out by topic
        publisher.send("trade", "SPY", [TRADE, TRADE])
        first, second = subscriber.recv(5), subscriber.recv(5)
        assert (first.stream, first.seq, first.records) == (topic("ingest", "trade", "SPY"), 1, [TRADE])
        assert (second.seq, len(second.records)) == (2, 2)
        deadline = time.monotonic() + 5
        beat = None
        while not isinstance(beat, Heartbeat) and time.monotonic() < deadline:
            publisher.tick()
            beat = subscriber.recv(0.05)
        assert beat.last_seqs["ingest/trade/SPY"] == 2 and beat.epoch == publisher.epoch
    finally:
        publisher.close()
        subscriber.close()


def test_run_dir_is_private(config):
    config.ensure_dirs()
    assert config.run_dir.stat().st_mode & 0o777 == 0o700
    assert presence_topic("ingest", "writer") == "ingest/@writer"


def test_a_full_journal_disk_is_counted_and_the_live_stream_goes_on(tmp_path):
    if os.geteuid() != 0:
        pytest.skip("mounting a tiny tmpfs to fill needs root (CI runs as root)")
    data = tmp_path / "data"
    data.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", str(data)], check=True)
    config = load({"RUN_DIR": str(tmp_path / "run"), "LOG_DIR": str(tmp_path), "DATA_DIR": str(data)})
    config.ensure_dirs()
    publisher = Publisher(config, "ingest", journaled=True)
    subscriber = Subscriber(config, "writer")
    subscriber.subscribe("ingest")
    try:
        assert publisher.wait_for_subscribers(["writer"], timeout=5) == []
        sent = 0
        while publisher.journal_errors == 0:
            publisher.send("trade", "SPY", [TRADE] * 20)
            sent += 1
            assert sent < 10_000, "a 64k disk should have filled"
        failed = sent  # the seq of the first frame the journal could not take
        publisher.send("trade", "SPY", [TRADE])  # small enough to fit what is left
        sent += 1
        received = [subscriber.recv(5) for _ in range(sent)]
        assert [frame.seq for frame in received] == list(range(1, sent + 1)), "every frame still went out live"
        journaled = [frame.seq for frame in read_envelopes(config.journal_dir("ingest"))]
        assert journaled[: failed - 1] == list(range(1, failed)), "nothing journaled before the disk filled is lost"
        assert failed not in journaled
        stats = ActorStats("ingest", interval=0)
        stats.maybe_publish(publisher)
        sample = next(frame for frame in iter(lambda: subscriber.recv(5), None) if frame.stream == "ingest/metric/ingest")
        assert sample.records[0].journal_errors >= 1, "the metric shows the failure"
    finally:
        publisher.close()
        subscriber.close()
        subprocess.run(["umount", str(data)], check=True)
