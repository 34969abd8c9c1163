"""After a connection ended: the wait, the status and the log level, on a fake monotonic clock."""

from __future__ import annotations

import logging

import pytest

from common.feed.reconnect_policy import HEALTHY_AFTER, ReconnectPolicy
from common.feed.streamer import Backoff, Stalled
from tests.helpers.fake_stream import closed, coded


class Monotonic:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def policy(clock: Monotonic) -> ReconnectPolicy:
    return ReconnectPolicy(Backoff(1.0, 8.0, rng=lambda: 0.5), limit_backoff=300.0, monotonic=clock)


@pytest.mark.parametrize(("error", "cause", "status", "level", "delay"), [
    (Stalled("quiet"), "stall", "reconnecting", logging.WARNING, 1.0),
    (closed(), "closed", "reconnecting", logging.WARNING, 1.0),
    (coded(12), "connection_limit", "connection_limit", logging.ERROR, 300.0),
    (coded(19), "symbol_limit", "reconnecting", logging.ERROR, 300.0),
])
def test_each_cause_has_its_status_level_and_least_wait(error, cause, status, level, delay):
    retry = policy(Monotonic()).after(error)
    assert (retry.cause.name, retry.status, retry.level, retry.delay) == (cause, status, level, delay)


def test_quick_failures_double_the_wait_up_to_its_cap():
    reconnect = policy(Monotonic())
    assert [reconnect.after(closed()).delay for _ in range(5)] == [1.0, 2.0, 4.0, 8.0, 8.0]


def test_a_connection_that_streamed_longer_than_healthy_after_starts_again_from_the_minimum():
    clock = Monotonic()
    reconnect = policy(clock)
    reconnect.after(closed()), reconnect.after(closed())
    reconnect.streaming()
    clock.now += HEALTHY_AFTER - 1
    assert reconnect.after(closed()).delay == 4.0, "not long enough: the backoff goes on"
    reconnect.streaming()
    clock.now += HEALTHY_AFTER + 1
    assert reconnect.after(closed()).delay == 1.0
    assert reconnect.after(closed()).delay == 2.0, "a failure before streaming again is not healthy"


def test_a_reset_starts_again_from_the_minimum():
    reconnect = policy(Monotonic())
    reconnect.after(closed()), reconnect.after(closed())
    reconnect.reset()
    assert reconnect.after(closed()).delay == 1.0
