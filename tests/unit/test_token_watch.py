"""The refresh token, watched: stale refused, a day's warning, and the wait for a new token file."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from common.feed.streamer import REFRESH_TOKEN_LIFETIME, TokenExpired
from common.feed.token_watch import TokenWatch
from common.feed.waiting import Idle
from tests.helpers.fake_stream import (
    MONDAY,
    Duties,
    FakeTime,
    LogLines,
    new_york,
    write_token,
)

DAY = 86_400.0


@pytest.fixture
def time() -> FakeTime:
    return FakeTime(new_york(MONDAY, 12))


@pytest.fixture
def log() -> LogLines:
    return LogLines("test.token_watch")


def watch(tmp_path: Path, time: FakeTime, log: LogLines, simulated: bool = False) -> TokenWatch:
    return TokenWatch(tmp_path / "token.json", log.logger, simulated=simulated, poll=10.0, now=time.epoch)


def test_a_fresh_token_passes_quietly(tmp_path: Path, time: FakeTime, log: LogLines):
    tokens = watch(tmp_path, time, log)
    write_token(tokens.path, time.epoch() - 2 * DAY)
    tokens.check()
    assert log.records == []


def test_a_day_before_expiry_it_warns_with_the_hours_left(tmp_path: Path, time: FakeTime, log: LogLines):
    tokens = watch(tmp_path, time, log)
    write_token(tokens.path, time.epoch() - REFRESH_TOKEN_LIFETIME + DAY / 2)
    tokens.check()
    [warning] = log.named("Schwab refresh token expires soon: run `make login` on this host")
    assert warning.hours_left == 12.0


def test_an_expired_token_is_refused(tmp_path: Path, time: FakeTime, log: LogLines):
    tokens = watch(tmp_path, time, log)
    write_token(tokens.path, time.epoch() - REFRESH_TOKEN_LIFETIME)
    with pytest.raises(TokenExpired, match="7.0 days old"):
        tokens.check()


def test_the_simulators_token_is_not_read(tmp_path: Path, time: FakeTime, log: LogLines):
    watch(tmp_path, time, log, simulated=True).check()  # no file at all
    assert log.records == []


def waited(tokens: TokenWatch, time: FakeTime, duties: Duties) -> bool:
    return asyncio.run(tokens.wait_for_new(Idle(duties.stopping, duties.tick, time, time.monotonic, time.sleep)))


def test_it_waits_past_an_old_and_an_unreadable_file_until_a_fresh_one(tmp_path: Path, time: FakeTime,
                                                                     log: LogLines):
    tokens, duties = watch(tmp_path, time, log), Duties()
    write_token(tokens.path, time.epoch() - 8 * DAY)
    files = iter([lambda: write_token(tokens.path, time.epoch() - 8 * DAY),
                  lambda: tokens.path.write_text("{not json"),
                  lambda: write_token(tokens.path, time.epoch())])

    def every_poll() -> None:
        if duties.ticks % 10 == 5:
            next(files)()

    duties.on_tick = every_poll
    assert waited(tokens, time, duties) is True
    assert time.elapsed == 30.0, "three polls: an old file, an unreadable one, then a fresh one"
    assert log.messages() == ["the new token file cannot be read; still waiting",
                              "new token file found; logging in again"]


def test_a_stop_ends_the_wait(tmp_path: Path, time: FakeTime, log: LogLines):
    tokens, duties = watch(tmp_path, time, log), Duties()
    duties.on_tick = duties.stop
    assert waited(tokens, time, duties) is False
    assert time.elapsed == 1.0


def test_expired_says_what_to_do_once(tmp_path: Path, time: FakeTime, log: LogLines):
    watch(tmp_path, time, log).expired(TokenExpired("too old"))
    [said] = log.records
    assert "run `make login`" in said.getMessage() and said.reason == "too old"
    assert said.token_path == str(tmp_path / "token.json")
