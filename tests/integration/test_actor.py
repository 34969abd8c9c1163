"""The actor frame's one loop (`Actor.run`) in-process, between real ZeroMQ sockets, stopped by a real SIGTERM."""

from __future__ import annotations

import json
import os
import signal

import pytest

from common.actor import Work
from common.streams import journaled_kinds
from common.transport.bus import Publisher, Subscriber
from common.transport.delivery import Follower
from common.transport.messages import Envelope, EquityQuote, EquityTrade, Heartbeat, IndicatorValue
from common.transport.tickerplant import Tickerplant
from common.transport.topics import stream
from tests.helpers.actor_frame import (
    ActorEnvironment,
    in_process_actor,
    publish_in_thread,
)

TRADE = EquityTrade("SPY", 1, 500.25, 100, 1000, 100, 500.24, 500.26, 7)
QUOTE = EquityQuote("SPY", 1, 500.24, 500.26, 3, 4, 1)


class Recording(Work):
    """Keeps every hook's call; stops the process with SIGTERM once it has taken `until` frames."""

    def __init__(self, until: int, **hooks):
        self.until, self.calls, self.taken = until, [], []
        self.__dict__.update(hooks)

    def take(self, frame: Envelope) -> None:
        self.taken.append((frame.seq, len(frame.records)))
        if len(self.taken) == self.until:
            os.kill(os.getpid(), signal.SIGTERM)

    def duty(self, now: float) -> None:
        if "duty" not in self.calls:
            self.calls.append("duty")

    def stop(self) -> None:
        self.calls.append("stop")

    def close(self) -> None:
        self.calls.append("close")


def test_frames_as_they_come_a_gap_reported_and_a_sigterm_ends_in_stop_close_and_a_final_heartbeat(actor_env):
    actor = in_process_actor("indicator", actor_env)
    work = Recording(until=3, subscriptions=(("ingest", EquityQuote),))
    listener = Subscriber(actor.config, "writer")
    listener.subscribe("indicator", IndicatorValue)
    assert actor.publisher.wait_for_subscribers(["writer"], 10) == [], "PUB/SUB sends nothing to a late subscriber"

    def send(publisher: Publisher) -> None:
        publisher.send([QUOTE])
        publisher.send([QUOTE, QUOTE])
        publisher.sequencer.next(stream(actor.config.deployment, "ingest", "quote"))  # frame 3 never goes out
        publisher.send([QUOTE])

    sender = publish_in_thread(actor.config, "ingest", ["indicator"], send)
    actor.run(work)
    sender.join()
    assert work.taken == [(1, 1), (2, 2), (4, 1)], "in order, the lost frame reported, not invented"
    assert work.calls == ["duty", "stop", "close"]
    assert actor.stats.gaps == 1 and actor.stats.status == "stopped"
    lost = [line for line in actor_env.log() if line["msg"] == "frames lost"]
    assert [(line["after"], line["through"], line["count"]) for line in lost] == [
        ([sender.epoch, 2], [sender.epoch, 3], 1)]
    beats = [frame for frame in iter(lambda: listener.recv(0.5), None) if isinstance(frame, Heartbeat)]
    assert beats and beats[-1].final, "consumers hear that nothing more is coming"
    listener.close()


class Flaky(Exception):
    """A failure a retry mends, such as a database that went away."""


def test_a_recoverable_failure_is_mended_and_the_loop_goes_on(actor_env):
    actor = in_process_actor("indicator", actor_env)
    mended: list[str] = []

    class FailsOnce(Recording):
        recoverable = (Flaky,)

        def take(self, frame: Envelope) -> None:
            if not mended:
                raise Flaky("the database went away")
            super().take(frame)

        def recover(self, error: Exception) -> bool:
            mended.append(str(error))
            return True

    work = FailsOnce(until=1, subscriptions=(("ingest", EquityQuote),))
    sender = publish_in_thread(actor.config, "ingest", ["indicator"],
                               lambda publisher: [publisher.send([QUOTE]) for _ in range(2)])
    actor.run(work)
    sender.join()
    assert mended == ["the database went away"] and work.taken == [(2, 1)]
    assert work.calls == ["duty", "stop", "close"]


def test_followed_streams_are_caught_up_from_the_journal_on_start_and_positions_shared(actor_env):
    actor = in_process_actor("indicator", actor_env)
    trades = stream(actor.config.deployment, "ingest", "trade")
    # What ingest journaled before the actor started.
    before = Tickerplant(actor.config, "ingest", journaled_kinds(actor.config.opted_in))
    before.send([TRADE])
    before.send([TRADE, TRADE])
    before.close()

    class Following(Recording):
        follows = (trades,)

        def start(self, follower: Follower | None) -> bool:
            super().start(follower)
            self.calls.append(f"started after {follower.replayed} replayed")
            return True

    work = Following(until=3, subscriptions=(("ingest", EquityTrade),))
    sender = publish_in_thread(actor.config, "ingest", ["indicator"],
                               lambda publisher: publisher.send([TRADE]), tickerplant=True)
    actor.run(work)
    sender.join()
    # The new epoch's first frame is journaled as it is sent: the catch-up may already find it there.
    assert work.calls[0] in ("started after 2 replayed", "started after 3 replayed"), work.calls
    assert work.taken == [(1, 1), (2, 2), (1, 1)], "the journal's two frames, then the new epoch's first"
    shared = json.loads(actor.config.offsets_file("indicator").read_text())
    assert shared["follows"] == [trades], "what the journal's pruning must wait for"
    assert shared["positions"][trades] in ([before.epoch, 1], [before.epoch, 2], [sender.epoch, 1]), \
        "a position taken, shared as they move (at most once a second)"
    assert actor.stats.replayed == 3 and actor.stats.gaps == 0, \
        "a new epoch may follow frames never seen, so its first is looked for in the journal, and found there"


@pytest.fixture
def actor_env(tmp_path, monkeypatch):
    """Settings in the environment, as supervisord gives them; the process-wide state an Actor sets, restored."""
    environment = ActorEnvironment(tmp_path, monkeypatch)
    yield environment
    environment.restore()
