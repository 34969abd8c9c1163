"""The pure parts of ingest's connection loop: causes, backoff, tokens, the checked decoder."""

from __future__ import annotations

import json
import logging
import time
from pathlib import Path

import httpx
import msgspec
import pytest
from authlib.integrations.base_client.errors import OAuthError
from schwab.streaming import UnexpectedResponse, UnexpectedResponseCode
from websockets.exceptions import ConnectionClosedError, ConnectionClosedOK
from websockets.frames import Close

from common.feed.streamer import (
    Backoff,
    CheckedDecoder,
    CommandTimeout,
    Stalled,
    StreamStopped,
    cause_of,
    is_token_expired,
    token_age,
    token_signature,
)
from common.simulator import protocol


def coded(code: int, msg: str = "refused") -> UnexpectedResponseCode:
    request = {"service": "ADMIN", "command": "LOGIN", "requestid": "1"}
    return UnexpectedResponseCode(protocol.response(request, code, msg, 0), f"code {code}")


def http_error(status: int) -> httpx.HTTPStatusError:
    request = httpx.Request("GET", "https://api.schwabapi.com/trader/v1/userPreference")
    return httpx.HTTPStatusError("refused", request=request, response=httpx.Response(status, request=request))


@pytest.mark.parametrize(("error", "name", "floor"), [
    (Stalled("quiet"), "stall", 0),
    (CommandTimeout("no answer to LOGIN"), "command_timeout", 0),
    (StreamStopped(30, "Stop streaming"), "stop_streaming", 0),
    (ConnectionClosedOK(Close(1000, "bye"), Close(1000, "bye"), True), "closed", 0),
    (ConnectionClosedError(None, None), "dropped", 0),
    (coded(3), "login_refused", 0),
    (coded(11), "service_unavailable", 0),
    (coded(12), "connection_limit", 60),
    (coded(19), "symbol_limit", 60),
    (coded(21), "code_21", 0),
    (UnexpectedResponse({"response": []}, "unexpected requestid"), "unexpected_response", 0),
    (http_error(401), "access_token_rejected", 0),
    (http_error(503), "http_error", 0),
    (ConnectionRefusedError(111, "refused"), "connect_failed", 0),
    (httpx.ConnectError("refused"), "connect_failed", 0),
    (KeyError("streamerInfo"), "error", 0),
])
def test_every_way_a_connection_ends_has_a_named_cause(error, name, floor):
    cause = cause_of(error, limit_backoff=60)
    assert (cause.name, cause.floor) == (name, floor)
    assert cause.detail


def test_code_12_says_what_to_do():
    assert "another one is open" in cause_of(coded(12, "Connection limit"), 60).detail


def test_a_refused_refresh_is_an_expired_token_not_a_reconnect():
    assert is_token_expired(OAuthError(error="invalid_client", description="refresh_token_authentication_error"))
    assert not is_token_expired(http_error(401)) and not is_token_expired(Stalled("x"))


def test_backoff_doubles_to_its_cap_with_jitter_and_respects_a_floor():
    backoff = Backoff(1.0, 8.0, rng=lambda: 0.5)  # no jitter at the middle
    assert [backoff.next() for _ in range(6)] == [1, 2, 4, 8, 8, 8]
    backoff.reset()
    assert backoff.next() == 1 and backoff.next(floor=300) == 300
    low, high = Backoff(1.0, 8.0, rng=lambda: 0.0), Backoff(1.0, 8.0, rng=lambda: 0.999999)
    assert low.next() == pytest.approx(0.8) and high.next() == pytest.approx(1.2, rel=1e-5)


def test_token_age_and_signature(tmp_path: Path):
    path = tmp_path / "token.json"
    assert token_signature(path) is None
    path.write_text(json.dumps({"creation_timestamp": 1_000, "token": {}}))
    assert token_age(path, now=1_000 + 7 * 86_400) == 7 * 86_400
    before = token_signature(path)
    replacement = tmp_path / "new.json"
    replacement.write_text(json.dumps({"creation_timestamp": 2_000, "token": {}}))
    replacement.replace(path)  # how `make login` and schwab-py write it: a new file
    assert token_signature(path) != before


@pytest.fixture
def decoded(caplog):
    skipped, data = [], []
    decoder = CheckedDecoder(data.append, logging.getLogger("test"), lambda: skipped.append(1))
    caplog.set_level(logging.ERROR, "test")
    return decoder, skipped, caplog, data


def test_every_frame_feeds_the_watchdog(decoded):
    decoder, skipped, _, _ = decoded
    decoder.last_frame = 0.0
    assert decoder.decode_json_string(json.dumps(protocol.heartbeat(1))) == protocol.heartbeat(1)
    assert time.monotonic() - decoder.last_frame < 1 and not skipped


def test_data_goes_to_the_edge_raw_and_the_rest_to_schwab_py(decoded):
    decoder, skipped, _, data = decoded
    frame = {**protocol.data("LEVELONE_EQUITIES", [{"key": "SPY", "3": 580.5}], 1), **protocol.heartbeat(1)}
    assert decoder.decode_json_string(json.dumps(frame)) == protocol.heartbeat(1)
    assert [msgspec.json.decode(raw) for raw in data] == [frame["data"]] and not skipped


def test_unknown_frames_are_logged_with_content_and_skipped(decoded):
    decoder, skipped, caplog, data = decoded
    assert decoder.decode_json_string('{"snapshot": [{"service": "X", "content": ["%s"]}]}' % ("x" * 900)) == {}
    assert decoder.decode_json_string("[1, 2]") == {}
    assert len(skipped) == 2 and not data
    contents = [record.content for record in caplog.records]
    assert "snapshot" in contents[0] and len(contents[0]) <= 501  # truncated


def test_stop_streaming_ends_the_connection(decoded):
    decoder, _, _, _ = decoded
    with pytest.raises(StreamStopped, match="code 30"):
        decoder.decode_json_string(json.dumps(protocol.stop_streaming(1)))


def test_unparsable_text_raises_what_schwab_py_catches(decoded):
    decoder, _, _, _ = decoded
    with pytest.raises(json.JSONDecodeError):
        decoder.decode_json_string('{"data": [{"service": "LEVELONE_EQ')
