"""Every simulator fault mode against the whole pipeline under supervisord, through the real schwab-py client.

One pipeline lives through the faults in order. Each ends with the stream
resumed and its cause in `streaming_metrics`; the last test stops everything
and checks, connection by connection, that every trade Schwab sent after a
recovery is stored exactly once (and, where the connection was cut off
abruptly, that a gap-free prefix of it is).
"""

from __future__ import annotations

import json
import time
from decimal import Decimal
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest

from common.config import simulator_token_path
from common.feed.schwab_client import write_token_file
from common.simulator import control
from tests.helpers.harness import Pipeline, wait_for

TICKERS = ("SPY", "QQQ")
SETTINGS = {
    "STREAM_WATCHDOG": "1.5s",
    "STREAM_COMMAND_TIMEOUT": "1.5s",
    "STREAM_BACKOFF_MIN": "0.1s",
    "STREAM_BACKOFF_MAX": "1s",
    "STREAM_LIMIT_BACKOFF": "1s",
    "TOKEN_POLL_INTERVAL": "0.3s",
    "SIM_HEARTBEAT": "0.3",
    "OPTION_CHAIN_REFRESH": "1s",
}
#: Connections a fault cut off without a close: only a prefix of what was sent may have arrived.
abrupt: set[int] = set()


@pytest.fixture(scope="module")
def pipeline():
    running = Pipeline(",".join(TICKERS), rate=60, **SETTINGS).start()
    try:
        wait_for(lambda: running.count("equity_data") > 10, 60, "ticks flowing")
        yield running
    finally:
        running.shutdown()


def inject(pipeline: Pipeline, spec: str) -> None:
    response = httpx.post(f"{pipeline.env['SIMULATOR_URL']}/sim/fault", json={"fault": spec},
                          headers=control.headers(pipeline.var / "run"), timeout=10)
    assert response.status_code == 200, response.text


def logins(pipeline: Pipeline) -> int:
    return pipeline.report_live()["counts"]["logins"]


def current_connection(pipeline: Pipeline) -> int:
    return pipeline.report_live()["counts"]["connections"]


def causes(pipeline: Pipeline) -> str:
    rows = pipeline.query("SELECT coalesce(string_agg(reconnect_causes, ','), '') FROM streaming_metrics"
                          " WHERE actor = 'ingest'")
    return rows[0][0]


def cause_count(pipeline: Pipeline, cause: str) -> int:
    return sum(int(part.split("=")[1]) for part in causes(pipeline).split(",") if part.startswith(f"{cause}="))


def resumed(pipeline: Pipeline, logins_before: int, cause: str, count_before: int) -> None:
    """The fault's cause is in the metrics, ingest logged in again, and new trades are stored."""
    wait_for(lambda: cause_count(pipeline, cause) > count_before, 30, f"{cause!r} in streaming_metrics")
    wait_for(lambda: logins(pipeline) > logins_before, 30, "a new login")
    stored = pipeline.count("equity_data")
    wait_for(lambda: pipeline.count("equity_data") > stored + 5, 30, "trades stored after recovery")


def fault_and_recovery(pipeline: Pipeline, specs: tuple[str, ...], cause: str) -> None:
    before, counted = logins(pipeline), cause_count(pipeline, cause)
    for spec in specs:
        inject(pipeline, spec)
    resumed(pipeline, before, cause, counted)


@pytest.mark.parametrize(("specs", "cause"), [
    (("close",), "closed"),
    (("drop",), "dropped"),
    (("stall",), "stall"),
    (("ignore:SUBS", "close"), "command_timeout"),
    (("ignore:LOGIN", "close"), "command_timeout"),
    (("refuse_login:2", "close"), "login_refused"),
    (("expire_access",), "access_token_rejected"),
    (("code:11", "close"), "service_unavailable"),
    (("code:12", "close"), "connection_limit"),
    (("code:19", "close"), "symbol_limit"),
    (("code:30",), "stop_streaming"),
    (("restart:3",), "connect_failed"),  # down longer than STREAM_BACKOFF_MAX: some attempt is refused
])
def test_fault_ends_in_a_resumed_stream(pipeline, specs, cause):
    if "drop" in specs or any(s.startswith("restart") for s in specs):
        abrupt.add(current_connection(pipeline))
    ingest_pid = pipeline.pid("ingest")
    fault_and_recovery(pipeline, specs, cause)
    assert pipeline.pid("ingest") == ingest_pid, "recovered in-process, not by a crash"


@pytest.mark.parametrize(("spec", "logged"), [
    ("malformed", ["malformed frame skipped", '{\\"data\\": [{\\"service\\": \\"LEVELONE_EQUITIES\\"']),
    ("unknown", ["frame skipped", "unknown frame kind ['snapshot']", "NEWS_HEADLINE"]),
])
def test_bad_frames_are_logged_and_skipped_without_a_reconnect(pipeline, spec, logged):
    before, stored = logins(pipeline), pipeline.count("equity_data")
    errors = pipeline.query("SELECT coalesce(sum(error_count), 0) FROM streaming_metrics WHERE actor = 'ingest'")[0][0]
    inject(pipeline, spec)
    wait_for(lambda: all(text in pipeline.log("ingest") for text in logged), 15, f"{spec} frame in ingest's log")
    wait_for(lambda: pipeline.count("equity_data") > stored + 10, 30, "the stream going on")
    wait_for(lambda: pipeline.query("SELECT coalesce(sum(error_count), 0) FROM streaming_metrics"
                                    " WHERE actor = 'ingest'")[0][0] > errors, 15, "the error counted")
    assert logins(pipeline) == before, "no reconnect for a bad frame"


def test_code_12_is_reported_and_not_retried_in_a_tight_loop(pipeline):
    lines = [json.loads(line) for line in pipeline.log("ingest").splitlines() if '"connection_limit"' in line]
    assert lines and all(line["level"] == "error" and "one streamer connection per user" in line["detail"]
                         for line in lines)
    assert all(line["retry_in_s"] >= 1.0 for line in lines), "at least STREAM_LIMIT_BACKOFF between tries"


def test_expired_refresh_token_waits_for_a_new_token_file(pipeline):
    ingest_pid, before = pipeline.pid("ingest"), logins(pipeline)
    inject(pipeline, "expire_refresh")
    wait_for(lambda: "Schwab refresh token expired: run `make login`" in pipeline.log("ingest"), 30, "the clear error")
    health = lambda: pipeline.query("SELECT ingest_status, status FROM get_streaming_health('SPY')")[0]  # noqa: E731
    wait_for(lambda: health() == ("token_expired", "token_expired"), 30, "token_expired in the health function")

    # No crash loop: the same process waits, trying nothing, using almost no CPU. options, whose chain
    # reads are refused too, keeps running and retrying rather than crashing into supervisord's restarts.
    options_pid = pipeline.pid("options")
    reconnects, cpu = sum_reconnects(pipeline), cpu_seconds(pipeline.pid("ingest"))
    time.sleep(3)  # a stretch of waiting is the thing measured here
    assert pipeline.pid("ingest") == ingest_pid and logins(pipeline) == before
    assert pipeline.pid("options") == options_pid and "invalid_client" in pipeline.log("options")
    assert sum_reconnects(pipeline) == reconnects
    assert cpu_seconds(ingest_pid) - cpu < 0.3
    assert pipeline.log("ingest").count("Schwab refresh token expired") == 1

    # What `make login` does: a new authorization code, exchanged, written as the token file.
    url = pipeline.env["SIMULATOR_URL"]
    location = httpx.get(f"{url}/v1/oauth/authorize?response_type=code&client_id=app&redirect_uri=https://127.0.0.1",
                         follow_redirects=False).headers["Location"]
    token = httpx.post(f"{url}/v1/oauth/token", data={
        "grant_type": "authorization_code", "code": parse_qs(urlsplit(location).query)["code"][0]}).json()
    token["expires_at"] = int(time.time()) + token["expires_in"]
    write_token_file(simulator_token_path(pipeline.var / "data" / "schwab_token.json"),
                     {"creation_timestamp": int(time.time()), "token": token})

    wait_for(lambda: logins(pipeline) > before, 30, "a login with the new token")
    stored = pipeline.count("equity_data")
    wait_for(lambda: pipeline.count("equity_data") > stored + 5, 30, "trades stored again")
    assert pipeline.pid("ingest") == ingest_pid
    chosen = pipeline.log("options").count("option contracts chosen")
    wait_for(lambda: pipeline.log("options").count("option contracts chosen") > chosen, 30,
             "options reading chains again with the new token")
    assert pipeline.pid("options") == options_pid


def sum_reconnects(pipeline: Pipeline) -> int:
    return pipeline.query("SELECT coalesce(sum(reconnect_count), 0) FROM streaming_metrics WHERE actor = 'ingest'")[0][0]


def cpu_seconds(pid: int) -> float:
    fields = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / 100  # utime + stime, in clock ticks of 1/100 s


def test_every_trade_sent_after_each_recovery_is_stored_once(pipeline):
    pipeline.stop_and_reopen()
    stored_rows = pipeline.stored_trades()
    stored = set(stored_rows)
    assert len(stored) == len(stored_rows), "none twice"
    sent_trades = pipeline.sent_trades()
    connections = sorted({t["connection"] for trades in sent_trades.values() for t in trades})
    assert len(connections) >= 12
    for symbol in TICKERS:
        sent = [(symbol, t["trade_time_ms"], t["day_volume"], Decimal(str(t["price"])), t["connection"])
                for t in sent_trades[symbol]]
        for connection in connections:
            on_it = [row[:4] for row in sent if row[4] == connection]
            kept = [row for row in on_it if row in stored]
            if connection in abrupt:
                assert kept == on_it[:len(kept)], f"connection {connection}: a gap-free prefix"
            else:
                assert kept == on_it, f"connection {connection}: everything sent is stored"
        assert {row for row in stored if row[0] == symbol} <= {row[:4] for row in sent}
