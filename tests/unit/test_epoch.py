"""A publisher's epoch grows across restarts whatever the wall clock does (common/transport/sequence.py's rule,
kept on disk by common/identity.py); every clock here is a fake one, stepped by hand."""

import pytest

from common.config import ConfigError, load
from common.identity import claim_epoch, epoch_file
from common.transport.bus import Publisher
from common.transport.messages import Envelope
from common.transport.sequence import StreamPositions, next_epoch
from common.transport.topics import stream
from tests.helpers.fsync_spy import FsyncSpy

NOON = 1_750_000_000 * 10**9
HOUR = 3600 * 10**9


@pytest.mark.parametrize("clock, last, epoch", [
    (NOON, None, NOON),  # a first run: the clock
    (NOON, NOON - HOUR, NOON),  # the clock moved on: the clock
    (NOON - HOUR, NOON, NOON + 1),  # the clock stepped back: one past the last run
    (NOON, NOON, NOON + 1),  # the same reading twice (a coarse clock): still a new epoch
])
def test_an_epoch_is_the_clock_unless_the_last_run_had_one_as_late(clock, last, epoch):
    assert next_epoch(clock, last) == epoch


@pytest.fixture
def config(tmp_path):
    return load({"RUN_DIR": str(tmp_path / "run"), "LOG_DIR": str(tmp_path), "DATA_DIR": str(tmp_path / "data"),
                 "DEPLOYMENT": "desk1"})


def start(config, name, clock_ns):
    """A publisher's run from start to close, on a clock that reads `clock_ns`; its epoch."""
    config.ensure_dirs()
    publisher = Publisher(config, name, epoch_clock=lambda: clock_ns)
    publisher.close()
    return publisher.epoch


def test_a_clock_stepped_back_between_two_publisher_starts_still_gives_a_larger_epoch(config):
    before = start(config, "ingest", NOON)
    after = start(config, "ingest", NOON - HOUR)  # NTP at boot, a stale RTC
    assert after > before
    trades = stream(config.deployment, "ingest", "trade")
    stored = StreamPositions({trades: (before, 500)})  # what the writer committed of the run before
    first_of_new_run = Envelope(trades, after, 1, 0, [])
    assert stored.classify(first_of_new_run) == "ahead" and stored.gap(first_of_new_run) is None, \
        "the new run's first frame is new, not already stored: taken, replayed, never pruned as consumed"


def test_the_epoch_is_on_disk_before_the_publisher_can_send(config, monkeypatch):
    config.ensure_dirs()
    spy = FsyncSpy(monkeypatch)
    publisher = Publisher(config, "ingest", epoch_clock=lambda: NOON)
    try:
        file = epoch_file(config.data_dir, "ingest")
        assert spy.wrote(file) and file.read_text() == f"{publisher.epoch}\n"
    finally:
        publisher.close()


def test_each_publisher_keeps_its_own_epoch(config):
    assert start(config, "ingest", NOON) == NOON
    assert start(config, "indicator", NOON - HOUR) == NOON - HOUR, "another publisher's runs are not its own"
    assert start(config, "ingest", NOON - 2 * HOUR) == NOON + 1


@pytest.mark.parametrize("content", [b"", b"yesterday\n", b"-5\n", b"99999999999999999999\n"])
def test_a_damaged_epoch_file_is_refused_naming_it_and_what_it_accepts(config, content):
    file = epoch_file(config.data_dir, "ingest")
    file.parent.mkdir(parents=True)
    file.write_bytes(content)
    with pytest.raises(ConfigError) as refused:
        claim_epoch(config.data_dir, "ingest", lambda: NOON)
    assert str(file) in str(refused.value) and "accepted: the publisher's last epoch" in str(refused.value)
    assert file.read_bytes() == content, "nothing is guessed over it"
