"""One damaged journal record or one empty offsets file, met as the operator meets them: by a running actor, which
reports it and goes on, instead of raising and being restarted into the same file for ever."""

from __future__ import annotations

import logging
import os
import signal

import pytest

from actors.metrics import writer_position
from common import config as configuration
from common.actor import Work
from common.streams import journaled_kinds
from common.transport.delivery import shared_offsets
from common.transport.messages import Envelope, EquityTrade
from common.transport.tickerplant import Tickerplant
from common.transport.topics import stream
from tests.helpers.actor_frame import ActorEnvironment, in_process_actor
from tests.helpers.journal_damage import flip_bit, record_offsets, segments

TRADE = EquityTrade("SPY", 1, 500.25, 100, 1000, 100, 500.24, 500.26, 7)


@pytest.fixture
def actor_env(tmp_path, monkeypatch):
    environment = ActorEnvironment(tmp_path, monkeypatch)
    yield environment
    environment.restore()


class Storing(Work):
    """Follows ingest's trades as the writer does; stops the process with SIGTERM once it has taken `until` frames."""

    drain_quiet = 0.2  # nothing upstream runs: no goodbye to wait for

    def __init__(self, follows: tuple[str, ...], until: int):
        self.follows, self.until, self.taken = follows, until, []

    def take(self, frame: Envelope) -> None:
        self.taken.append(frame.seq)
        if len(self.taken) == self.until:
            os.kill(os.getpid(), signal.SIGTERM)


def test_a_damaged_journal_record_is_counted_logged_and_every_frame_after_it_taken(actor_env) -> None:
    actor = in_process_actor("writer", actor_env)
    ingest = Tickerplant(actor.config, "ingest", journaled_kinds(actor.config.opted_in))
    for _ in range(6):
        ingest.send([TRADE])
    ingest.close()
    [segment] = segments(actor.config.journal_dir("ingest"))
    starts = record_offsets(segment)
    flip_bit(segment, starts[2] + 12)  # frame 3's payload
    work = Storing((stream(actor.config.deployment, "ingest", "trade"),), until=5)

    actor.run(work)

    assert work.taken == [1, 2, 4, 5, 6], "every good frame, the damaged one left out, nothing invented"
    assert actor.stats.rejections == {"journal_record_damaged": 1} and actor.stats.errors == 1
    [damaged] = [line for line in actor_env.log() if "damaged" in line["msg"]]
    assert damaged["level"] == "error"
    assert (damaged["segment"], damaged["offset"], damaged["skipped_bytes"]) == (
        str(segment), starts[2], starts[3] - starts[2])
    assert [line["msg"] for line in actor_env.log()][-1] == "stopped", "stopped on SIGTERM, not by an exception"


def test_an_empty_offsets_file_is_set_aside_and_publishers_and_metrics_read_on(actor_env, caplog) -> None:
    config = configuration.load()
    config.ensure_dirs()
    config.offsets_dir.mkdir(parents=True)
    empty = config.offsets_file("writer")
    empty.write_bytes(b"")  # what a power cut left of a rename without fsync
    ingest = Tickerplant(config, "ingest", journaled_kinds(config.opted_in))
    ingest.send([TRADE])

    with caplog.at_level(logging.ERROR):
        ingest.prune()  # once a minute in ingest, indicator and metrics: each raised here, and was restarted
        assert writer_position(empty) == ({}, ()), "metrics: the writer's lag unknown, not a crash"
    ingest.close()

    assert not empty.exists() and empty.with_name("writer.json.unreadable").exists()
    [line] = [record for record in caplog.records if "unreadable" in record.getMessage()]
    assert line.path == str(empty) and line.reason
    assert shared_offsets(empty) is None
