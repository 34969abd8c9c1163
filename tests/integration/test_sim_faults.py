"""Simulator fault modes: the spec language, which request each armed fault answers, and the command line."""

from __future__ import annotations

import asyncio
import logging
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from common import config as config_module
from common.feed.schwab_client import make_client, make_stream_client
from common.feed.streamer import CheckedDecoder, StreamStopped
from common.simulator import faults
from common.simulator.faults import Fault, FaultError, Faults, parse
from tests.helpers.simulator_process import ROOT, simulator


@pytest.mark.parametrize(("spec", "fault"), [
    ("close", Fault("close")),
    ("drop", Fault("drop")),
    ("stall", Fault("stall")),
    ("stall:2.5", Fault("stall", seconds=2.5)),
    ("ignore:subs", Fault("ignore", command="SUBS")),
    ("malformed", Fault("malformed")),
    ("unknown", Fault("unknown")),
    ("refuse_login:3", Fault("refuse_login", count=3)),
    ("expire_access", Fault("expire_access")),
    ("expire_refresh", Fault("expire_refresh")),
    ("code:19", Fault("code", code=19)),
    ("restart:1", Fault("restart", seconds=1)),
    ("restart", Fault("restart", seconds=2)),
])
def test_specs(spec, fault):
    assert parse(spec) == fault
    assert parse(str(fault)) == fault


@pytest.mark.parametrize(("spec", "says"), [
    ("explode", "unknown fault 'explode'"),
    ("code:13", "bad argument '13'"),
    ("ignore:DANCE", "bad argument 'DANCE'"),
    ("stall:-1", "bad argument '-1'"),
    ("refuse_login:0", "bad argument '0'"),
    ("close:5", "takes no argument"),
])
def test_bad_specs_say_what_is_wrong(spec, says):
    with pytest.raises(FaultError, match=says):
        parse(spec)


def test_which_faults_act_at_once():
    assert parse("code:30").immediate and parse("drop").immediate and parse("restart").immediate
    assert not parse("code:12").immediate and not parse("ignore:LOGIN").immediate


def test_armed_faults_answer_the_request_they_are_for_then_are_spent():
    armed = Faults()
    for spec in ("ignore:ADD", "refuse_login:2", "code:19", "code:12"):
        armed.arm(parse(spec))
    assert armed.override("LEVELONE_OPTIONS", "UNSUBS") is None
    assert armed.override("LEVELONE_OPTIONS", "ADD").silent
    assert armed.override("LEVELONE_EQUITIES", "SUBS").code == 19
    assert armed.override("LEVELONE_EQUITIES", "SUBS") is None
    first, second, third = (armed.override("ADMIN", "LOGIN") for _ in range(3))
    assert (first.code, second.code, third.code) == (3, 3, 12)
    assert first.close and third.close
    assert armed.override("ADMIN", "LOGIN") is None and not armed.armed


def test_code_11_answers_a_subscription():
    armed = Faults()
    armed.arm(parse("code:11"))
    assert armed.override("ADMIN", "LOGIN") is None
    assert armed.override("CHART_EQUITY", "SUBS").code == 11


def test_every_mode_is_documented():
    assert all(f"`{mode}" in faults.__doc__ for mode in faults.MODES)


def test_a_fault_chosen_on_the_command_line_reaches_the_real_client(tmp_path: Path):
    """`--fault code:30` after the first login: schwab-py's client sees Schwab's STOP_STREAMING."""
    with simulator("--rate", "100", "--heartbeat", "0.2", "--fault", "code:30", "--fault-after", "0.5",
                   log=tmp_path / "simulator.log") as url:
        config = config_module.load({"SIMULATOR_URL": url, "SCHWAB_TOKEN_PATH": str(tmp_path / "token.json")})

        async def stream_until_stopped() -> StreamStopped:
            stream = make_stream_client(make_client(config, asyncio=True))
            stream.set_json_decoder(CheckedDecoder(lambda data: None, logging.getLogger("t"), list))
            await stream.login()
            await stream.level_one_equity_subs(["SPY"])
            deadline = time.monotonic() + 10
            while time.monotonic() < deadline:
                try:
                    await stream.handle_message()
                except StreamStopped as stopped:
                    return stopped
            raise AssertionError("no STOP_STREAMING within 10 s")

        stopped = asyncio.run(stream_until_stopped())
        assert stopped.code == 30
        counts = httpx.get(f"{url}/sim/report").json()["counts"]
        assert counts["faults"] == 1 and counts["fault:code:30"] == 1


def test_a_bad_fault_on_the_command_line_is_refused():
    result = subprocess.run([sys.executable, "-m", "common.simulator", "--fault", "code:13"],
                            cwd=ROOT, capture_output=True, text=True, timeout=30)
    assert result.returncode == 2 and "fault 'code:13': bad argument '13'" in result.stderr
