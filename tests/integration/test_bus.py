"""The envelope, then frames, heartbeats and gaps over real ZeroMQ sockets (the rule: tests/unit/test_sequence.py)."""

import socket
import time

import pytest

from common.config import load
from common.transport.bus import (
    Publisher,
    Subscriber,
    presence_topic,
)
from common.transport.messages import (
    Envelope,
    EquityQuote,
    EquityTrade,
    Heartbeat,
    IndicatorValue,
    decode_envelope,
    encode,
)
from common.transport.topics import stream

TRADE = EquityTrade("SPY", 1, 500.25, 100, 1000, 100, 500.24, 500.26, 7)
QUOTE = EquityQuote("SPY", 1, 500.24, 500.26, 3, 4, 1)
VALUE = IndicatorValue("SPY", 1, 1000, 500.25, None, 500.25, 7)


def test_envelope_round_trips_with_its_records():
    envelope = Envelope("host/ingest/trade", 11, 3, 99, [TRADE, TRADE])
    assert decode_envelope(encode(envelope)) == envelope


@pytest.fixture
def config(tmp_path_factory):
    run = tmp_path_factory.mktemp("bus")
    return load({"RUN_DIR": str(run), "LOG_DIR": str(run), "DATA_DIR": str(run), "HEARTBEAT_INTERVAL": "50ms",
                 "DEPLOYMENT": "host"})


def test_frames_and_heartbeats_cross_real_sockets(config):
    config.ensure_dirs()
    publisher = Publisher(config, "ingest")
    subscriber = Subscriber(config, "writer")
    subscriber.subscribe("ingest", EquityTrade)
    try:
        assert publisher.wait_for_subscribers(["writer"], timeout=5) == []
        assert publisher.wait_for_subscribers(["nobody"], timeout=0.1) == ["nobody"]
        publisher.send([TRADE])
        publisher.send([QUOTE])  # filtered out by topic
        with pytest.raises(TypeError, match="one type"):
            publisher.send([TRADE, QUOTE])  # a frame is of one kind: refused, and no seq taken
        publisher.send([TRADE, TRADE])
        first, second = subscriber.recv(5), subscriber.recv(5)
        assert (first.stream, first.seq, first.records) == ("host/ingest/trade", 1, [TRADE])
        assert (second.seq, len(second.records)) == (2, 2)
        deadline = time.monotonic() + 5
        beat = None
        while not isinstance(beat, Heartbeat) and time.monotonic() < deadline:
            publisher.tick()
            beat = subscriber.recv(0.05)
        assert beat.last_seqs[stream("host", "ingest", "trade")] == 2 and beat.epoch == publisher.epoch
    finally:
        publisher.close()
        subscriber.close()


def test_run_dir_is_private(config):
    config.ensure_dirs()
    assert config.run_dir.stat().st_mode & 0o777 == 0o700
    assert presence_topic("host", "ingest", "writer") == "host/ingest/@writer"


def test_a_wake_fd_ends_a_wait_at_once_and_only_once(config):
    """A stop signal's byte ends the wait; taken, it does not turn later waits (a drain's) into a spin."""
    config.ensure_dirs()
    wake, waker = socket.socketpair()
    wake.setblocking(False)
    subscriber = Subscriber(config, "writer", wake_fd=wake.fileno())
    subscriber.subscribe("ingest", EquityTrade)
    try:
        waker.send(b"\x0f")
        started = time.monotonic()
        assert subscriber.recv(5) is None
        assert time.monotonic() - started < 1, "woken at once"
        started = time.monotonic()
        assert subscriber.recv(0.3) is None
        assert time.monotonic() - started >= 0.25, "the next wait waits"
    finally:
        subscriber.close()
        wake.close()
        waker.close()


def test_a_rest_lets_frames_queue_and_a_wake_fd_ends_it(config):
    """The writer's rest while a batch fills: frames that arrive do not end it; a stop does, at once."""
    config.ensure_dirs()
    wake, waker = socket.socketpair()
    wake.setblocking(False)
    publisher = Publisher(config, "ingest")
    subscriber = Subscriber(config, "writer", wake_fd=wake.fileno())
    subscriber.subscribe("ingest", EquityTrade)
    try:
        assert publisher.wait_for_subscribers(["writer"], timeout=5) == []
        publisher.send([TRADE])
        started = time.monotonic()
        subscriber.rest(0.3)
        assert time.monotonic() - started >= 0.25, "a frame does not end a rest"
        assert subscriber.recv_nowait().records == [TRADE], "the frame waited, queued"
        waker.send(b"\x0f")
        started = time.monotonic()
        subscriber.rest(5)
        assert time.monotonic() - started < 1, "a stop ends the rest at once"
        started = time.monotonic()
        subscriber.rest(0.3)
        assert time.monotonic() - started >= 0.25, "the stop's byte was taken: the next rest rests"
    finally:
        publisher.close()
        subscriber.close()
        wake.close()
        waker.close()


def test_an_idle_publisher_spaces_its_heartbeats_out_and_a_frame_resets_them(config):
    config.ensure_dirs()
    publisher = Publisher(config, "indicator")
    try:
        publisher.send([VALUE])
        intervals = []
        for _ in range(5):
            due = publisher.heartbeat_due
            intervals.append(round((due - publisher._last_send) / publisher.heartbeat_interval))
            publisher._last_send -= due - publisher._last_send  # as if that much time had passed
            assert publisher.tick()
        assert intervals == [1, 2, 4, 8, 8]
        publisher.send([VALUE])
        assert round((publisher.heartbeat_due - publisher._last_send) / publisher.heartbeat_interval) == 1
    finally:
        publisher.close()
