"""The tickerplant: log, then publish; a journal that cannot be written never stops the live stream."""

import logging
import os
import random
import subprocess

import pytest

from common.config import load
from common.observe.stats import ActorStats
from common.streams import journaled_kinds
from common.transport.bus import Subscriber
from common.transport.journal import read_envelopes
from common.transport.messages import EquityQuote, EquityTrade, MetricSample
from common.transport.tickerplant import Tickerplant

TRADE = EquityTrade("SPY", 1, 500.25, 100, 1000, 100, 500.24, 500.26, 7)


def test_journaled_kinds_are_logged_before_they_are_sent_and_the_rest_only_sent(tmp_path):
    config = load({"RUN_DIR": str(tmp_path / "run"), "LOG_DIR": str(tmp_path), "DATA_DIR": str(tmp_path / "data"),
                   "DEPLOYMENT": "host"})
    config.ensure_dirs()
    publisher = Tickerplant(config, "ingest", journaled_kinds(config.opted_in))
    try:
        publisher.send([TRADE])
        publisher.send([EquityQuote("SPY", 1, 500.24, 500.26, 1, 2, 7)])
        publisher.send([TRADE, TRADE])
        journaled = [(frame.stream, frame.seq, len(frame.records)) for frame in read_envelopes(
            config.journal_dir("ingest"))]
        assert journaled == [("host/ingest/trade", 1, 1), ("host/ingest/trade", 2, 2)], "quotes are not journaled"
        assert publisher.journal_bytes > 0
    finally:
        publisher.close()


def test_a_full_journal_disk_is_counted_and_the_live_stream_goes_on(tmp_path):
    if os.geteuid() != 0:
        pytest.skip("mounting a tiny tmpfs to fill needs root (CI runs as root)")
    data = tmp_path / "data"
    data.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", str(data)], check=True)
    config = load({"RUN_DIR": str(tmp_path / "run"), "LOG_DIR": str(tmp_path), "DATA_DIR": str(data),
                   "DEPLOYMENT": "host"})
    config.ensure_dirs()
    publisher = Tickerplant(config, "ingest", journaled_kinds(config.opted_in))
    subscriber = Subscriber(config, "writer")
    subscriber.subscribe("ingest", EquityTrade)
    subscriber.subscribe("ingest", MetricSample)
    try:
        assert publisher.wait_for_subscribers(["writer"], timeout=5) == []
        sent = 0
        while publisher.journal_errors == 0:
            publisher.send([TRADE] * 20)
            sent += 1
            assert sent < 10_000, "a 64k disk should have filled"
        failed = sent  # the seq of the first frame the journal could not take
        publisher.send([TRADE])  # small enough to fit what is left
        sent += 1
        received = [subscriber.recv(5) for _ in range(sent)]
        assert [frame.seq for frame in received] == list(range(1, sent + 1)), "every frame still went out live"
        journaled = [frame.seq for frame in read_envelopes(config.journal_dir("ingest"))]
        assert journaled[: failed - 1] == list(range(1, failed)), "nothing journaled before the disk filled is lost"
        assert failed not in journaled
        stats = ActorStats("ingest", interval=0)
        stats.maybe_publish(publisher)
        sample = next(frame for frame in iter(lambda: subscriber.recv(5), None) if frame.stream == "host/ingest/metric")
        assert sample.records[0].journal_errors >= 1, "the metric shows the failure"
    finally:
        publisher.close()
        subscriber.close()
        subprocess.run(["umount", str(data)], check=True)


def test_over_its_cap_the_journal_drops_its_oldest_unconsumed_segments_loudly(tmp_path, caplog):
    config = load({"RUN_DIR": str(tmp_path / "run"), "LOG_DIR": str(tmp_path), "DATA_DIR": str(tmp_path / "data"),
                   "DEPLOYMENT": "host", "JOURNAL_SEGMENT_BYTES": "65536", "JOURNAL_MAX_BYTES": "1048576"})
    config.ensure_dirs()
    publisher = Tickerplant(config, "ingest", journaled_kinds(config.opted_in))
    rng = random.Random(1)
    try:
        while publisher.journal_bytes < 2 * config.journal_max_bytes:  # a writer away: nothing consumed
            publisher.send([EquityTrade("SPY", rng.randrange(1 << 40), rng.uniform(1, 999), 1, rng.randrange(1 << 40),
                                                 1, None, None, rng.randrange(1 << 60)) for _ in range(50)])
        with caplog.at_level(logging.ERROR, logger="common.transport.tickerplant"):
            publisher.prune()
        assert publisher.journal_bytes <= config.journal_max_bytes
        assert publisher.journal_errors == len(caplog.records) > 0, "each dropped segment counted and logged"
        lost_up_to = caplog.records[-1].lost_up_to["host/ingest/trade"]
        survivors = [frame.seq for frame in read_envelopes(config.journal_dir("ingest"))]
        assert survivors[0] == lost_up_to[1] + 1 and survivors == list(range(survivors[0], survivors[-1] + 1)), \
            "the oldest went, up to the frame the alarm names; what is left is whole"
    finally:
        publisher.close()
