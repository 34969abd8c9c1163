"""Ingest's connection state machine against scripted schwab-py streams, on fake time.

Each test scripts what Schwab does (data, silence, a closed socket, a refused
command, an expired token) and reads what the connection did: the commands it
sent, the frames it published, its status, its log lines, and how long it
waited. A test ends when the scripted connections are used up (the fake
clients then request a stop).
"""

from __future__ import annotations

import datetime
import logging
from pathlib import Path

import httpx
from authlib.integrations.base_client.errors import OAuthError

from common.feed.reconnect_policy import HEALTHY_AFTER
from common.feed.streamer import REFRESH_TOKEN_LIFETIME
from tests.helpers.fake_stream import (
    MONDAY,
    WATCHDOG,
    Call,
    Deliver,
    Fail,
    FakeStream,
    Stall,
    bars,
    closed,
    coded,
    heartbeat,
    new_york,
    rig,
    write_token,
)

OPENED = new_york(MONDAY, 9, 31)
#: Seconds from OPENED to just after the regular session's end (16:00).
TO_THE_CLOSE = (new_york(MONDAY, 16) - OPENED).total_seconds() + 1
LOGIN = [("login", []), ("level_one_equity_subs", ["MSFT", "GOOG"]), ("chart_equity_subs", ["MSFT", "GOOG"])]
CALL, PUT, CALL_2, PUT_2 = ("SPY   260320C00500000", "SPY   260320P00500000", "SPY   260320C00505000",
                            "SPY   260320P00505000")


def token_expired() -> OAuthError:
    return OAuthError(error="invalid_client", description="refresh_token_authentication_error")


def retries(rig_log) -> list[tuple[str, float, int]]:
    return [(r.cause, r.retry_in_s, r.levelno) for r in rig_log.named("connection lost; reconnecting")]


def option_commands(sent: list[tuple[str, list[str]]]) -> list[tuple[str, list[str]]]:
    return [(name, symbols) for name, symbols in sent if name.startswith("level_one_option")]


def test_a_session_logs_in_subscribes_reads_and_logs_out_at_its_end_then_waits_for_the_next(tmp_path: Path):
    stream = FakeStream(Deliver(bars(), after=1), Deliver(heartbeat(), after=TO_THE_CLOSE))
    rigged = rig(tmp_path, OPENED, stream)
    rigged.run()
    assert stream.sent == [*LOGIN, ("logout", [])]
    assert [bar.symbol for bar in rigged.kept.records("bar")] == ["MSFT", "GOOG"]
    assert rigged.log.messages()[:4] == ["logging in", "streaming", "logged out",
                                         "market closed: logged out until shortly before the session"]
    closed_until = rigged.log.named("market closed: logged out until shortly before the session")[0]
    assert closed_until.wake_at == "2026-03-03T14:25:00+00:00", "Tuesday 09:25 New York: MARKET_LEAD before"
    assert rigged.stats.reconnects == {} and rigged.reports == []
    assert rigged.time.now() >= new_york(MONDAY.replace(day=3), 9, 25), "slept until the lead before Tuesday"


def test_a_stall_past_the_watchdog_reconnects_after_a_doubling_backoff(tmp_path: Path):
    first, second = FakeStream(Deliver(bars()), Stall(WATCHDOG + 1)), FakeStream(Stall(WATCHDOG + 1))
    rigged = rig(tmp_path, OPENED, first, second)
    rigged.run()
    assert first.sent == LOGIN and second.sent == LOGIN, "each connection logs in afresh; a stalled one is dropped"
    assert retries(rigged.log) == [("stall", 1.0, logging.WARNING), ("stall", 2.0, logging.WARNING)]
    assert "STREAM_WATCHDOG=30 s" in rigged.log.named("connection lost; reconnecting")[0].detail
    assert rigged.stats.reconnects == {"stall": 2} and rigged.reports == ["reconnecting", "reconnecting"]
    assert rigged.time.slept == [1.0, 1.0, 1.0], "one second, then two, idle in IDLE_TICK steps"
    assert len(rigged.kept.records("bar")) == 2, "what came before the stall was published"


def test_a_connection_that_streamed_longer_than_healthy_after_starts_the_backoff_again(tmp_path: Path):
    rigged = rig(tmp_path, OPENED,
                 FakeStream(Fail(closed())), FakeStream(Fail(closed())),
                 FakeStream(Deliver(heartbeat(), after=HEALTHY_AFTER + 1), Fail(closed())), FakeStream(Fail(closed())))
    rigged.run()
    assert [delay for _, delay, _ in retries(rigged.log)] == [1.0, 2.0, 1.0, 2.0]
    assert rigged.stats.reconnects == {"closed": 4}


def test_an_expired_token_waits_for_a_new_token_file_then_logs_in_again(tmp_path: Path):
    refused, fresh = FakeStream(errors={"login": token_expired()}), FakeStream(Deliver(bars()), Fail(closed()))
    rigged = rig(tmp_path, OPENED, refused, fresh)

    def person_runs_make_login() -> None:
        if rigged.duties.ticks == 3:
            write_token(rigged.config.schwab_token_path, rigged.time.epoch())

    rigged.duties.on_tick = person_runs_make_login
    rigged.run()
    assert refused.sent == [("login", [])] and fresh.sent == LOGIN
    assert len(rigged.log.named("Schwab refresh token expired: run `make login` on this host to create a new "
                                "token file; ingest waits for it and resumes by itself")) == 1
    assert "new token file found; logging in again" in rigged.log.messages()
    assert rigged.reports[0] == "token_expired" and rigged.stats.errors >= 1
    assert rigged.clients.forgotten == 1, "the clients are built again from the new file"
    assert rigged.time.slept[:10] == [1.0] * 10, "the file is looked at every TOKEN_POLL_INTERVAL (10 s)"
    assert "token_expired" not in rigged.stats.reconnects, "an expired token is no reconnect"
    assert len(rigged.kept.records("bar")) == 2


def test_a_token_file_too_old_is_refused_before_connecting(tmp_path: Path):
    stream = FakeStream(Fail(closed()))
    rigged = rig(tmp_path, OPENED, stream)
    write_token(rigged.config.schwab_token_path, rigged.time.epoch() - REFRESH_TOKEN_LIFETIME - 86_400)
    rigged.duties.on_tick = lambda: write_token(rigged.config.schwab_token_path, rigged.time.epoch())
    rigged.run()
    expired = rigged.log.named("Schwab refresh token expired: run `make login` on this host to create a new "
                               "token file; ingest waits for it and resumes by itself")
    assert "8.0 days old" in expired[0].reason
    assert rigged.clients.handed == [stream], "no stream was made on the old token"
    assert stream.sent == LOGIN


def test_a_stop_ends_the_wait_for_the_session(tmp_path: Path):
    saturday = new_york(MONDAY.replace(day=7), 10)
    rigged = rig(tmp_path, saturday, FakeStream(Fail(closed())))
    rigged.time.longest_nap = 3600.0
    rigged.duties.on_tick = rigged.duties.stop
    rigged.run()
    assert rigged.clients.handed == [] and rigged.stats.status == "market_closed"
    assert rigged.time.now() == saturday.replace(hour=11), "stopped at the first wake, long before Monday"


def test_a_stop_ends_the_backoff(tmp_path: Path):
    rigged = rig(tmp_path, OPENED, FakeStream(Fail(closed())), FakeStream(Fail(closed())),
                 stream_backoff_min=60.0, stream_backoff_max=120.0)
    rigged.duties.on_tick = rigged.duties.stop
    rigged.run()
    assert len(rigged.clients.handed) == 1 and rigged.time.slept == [1.0], "a 60 s backoff cut short after 1 s"


def test_a_stop_ends_the_wait_for_a_token(tmp_path: Path):
    rigged = rig(tmp_path, OPENED, FakeStream(errors={"login": token_expired()}), FakeStream(Fail(closed())))
    rigged.duties.on_tick = rigged.duties.stop
    rigged.run()
    assert len(rigged.clients.handed) == 1 and rigged.clients.forgotten == 0
    assert rigged.stats.status == "token_expired" and rigged.time.slept == [1.0]


def test_a_stop_while_streaming_logs_out(tmp_path: Path):
    rigged = rig(tmp_path, OPENED)
    stream = FakeStream(Deliver(bars()), Call(rigged.duties.stop), Deliver(heartbeat()), Deliver(bars()))
    rigged.clients.streams.extend([stream, FakeStream(Fail(closed()))])
    rigged.run()
    assert stream.sent == [*LOGIN, ("logout", [])] and rigged.stats.status == "stopping"
    assert len(rigged.clients.handed) == 1
    assert len(rigged.kept.records("bar")) == 4, "what Schwab sent before closing after LOGOUT is published too"


def test_option_wishes_move_the_subscription_by_their_difference_only(tmp_path: Path):
    rigged = rig(tmp_path, OPENED)
    rigged.control.send("SPY", CALL, PUT)
    stream = FakeStream(Deliver(heartbeat(), after=0.1),
                        Call(lambda: rigged.control.send("SPY", PUT, CALL_2, PUT_2)), Deliver(heartbeat(), after=0.1),
                        Call(lambda: rigged.control.send("SPY", CALL_2, PUT, PUT_2)), Deliver(heartbeat(), after=0.1),
                        Deliver(heartbeat(), after=TO_THE_CLOSE))
    rigged.clients.streams.append(stream)
    rigged.run()
    assert option_commands(stream.sent) == [("level_one_option_subs", [CALL, PUT]),
                                            ("level_one_option_unsubs", [CALL]),
                                            ("level_one_option_add", [CALL_2, PUT_2])]
    assert [r.streaming for r in rigged.log.named("option contracts changed")] == [2, 3]


def test_a_new_connection_subscribes_the_whole_wish_again(tmp_path: Path):
    rigged = rig(tmp_path, OPENED)
    rigged.control.send("SPY", CALL, PUT)
    first = FakeStream(Deliver(heartbeat(), after=0.1), Fail(closed()))
    second = FakeStream(Deliver(heartbeat(), after=0.1), Fail(closed()))
    rigged.clients.streams.extend([first, second])
    rigged.run()
    assert option_commands(first.sent) == option_commands(second.sent) == [("level_one_option_subs", [CALL, PUT])]


def test_code_19_on_option_contracts_streams_the_rest_and_asks_again_only_for_a_new_wish(tmp_path: Path):
    rigged = rig(tmp_path, OPENED)
    rigged.control.send("SPY", CALL, PUT)
    stream = FakeStream(Deliver(bars(), after=0.1), Deliver(heartbeat(), after=0.1), Deliver(heartbeat(), after=0.1),
                        Call(lambda: rigged.control.send("SPY", CALL)), Deliver(heartbeat(), after=0.1),
                        Deliver(heartbeat(), after=TO_THE_CLOSE), errors={"level_one_option_subs": coded(19)})
    rigged.clients.streams.append(stream)
    rigged.run()
    assert option_commands(stream.sent) == [("level_one_option_subs", [CALL, PUT]), ("level_one_option_subs", [CALL])]
    assert len(rigged.log.named("Schwab refused option contracts over its symbol limit (code 19); "
                                "streaming the rest")) == 1
    assert rigged.stats.reconnects == {} and stream.sent[-1] == ("logout", [])
    assert len(rigged.kept.records("bar")) == 2


def test_code_19_on_the_equity_subscription_reconnects_after_the_limit_backoff(tmp_path: Path):
    rigged = rig(tmp_path, OPENED, FakeStream(errors={"level_one_equity_subs": coded(19, "too many symbols")}))
    rigged.run()
    assert retries(rigged.log) == [("symbol_limit", 300.0, logging.ERROR)]
    assert rigged.stats.reconnects == {"symbol_limit": 1} and sum(rigged.time.slept) == 300.0


def test_a_command_without_an_answer_is_given_up(tmp_path: Path):
    rigged = rig(tmp_path, OPENED, FakeStream(hang=frozenset({"login"})), stream_command_timeout=0.01)
    rigged.run()
    assert [cause for cause, _, _ in retries(rigged.log)] == ["command_timeout"]
    assert "no answer to ADMIN LOGIN" in rigged.log.named("connection lost; reconnecting")[0].detail


def test_a_rejected_access_token_is_refreshed_before_the_next_connection(tmp_path: Path):
    request = httpx.Request("GET", "https://api.schwabapi.com/trader/v1/userPreference")
    refused = httpx.HTTPStatusError("401", request=request, response=httpx.Response(401, request=request))
    rigged = rig(tmp_path, OPENED, FakeStream(errors={"login": refused}))
    rigged.run()
    assert rigged.clients.refreshed == 1 and rigged.stats.reconnects == {"access_token_rejected": 1}


def test_a_malformed_frame_is_skipped_and_the_connection_goes_on(tmp_path: Path):
    stream = FakeStream(Deliver("not json {"), Deliver(bars()), Deliver(heartbeat(), after=TO_THE_CLOSE))
    rigged = rig(tmp_path, OPENED, stream)
    rigged.run()
    assert rigged.log.named("malformed frame skipped")[0].content == "not json {"
    assert rigged.stats.errors == 1 and rigged.stats.reconnects == {}
    assert len(rigged.kept.records("bar")) == 2 and stream.sent[-1] == ("logout", [])


def test_with_a_future_ingest_is_logged_in_on_cmes_sessions_too_and_subscribes_each_symbol_to_its_services(
        tmp_path: Path):
    """At 17:55 Monday the stocks' session is over, and CME's next opens at 18:00: with /ES streamed ingest logs in
    for it; the stock goes to the equity services and the future to the futures services, each with its own."""
    lead = datetime.timedelta(minutes=5)
    rigged = rig(tmp_path, new_york(MONDAY, 17, 55), tickers=("MSFT", "/ES"))
    wake, window = rigged.connection().sessions.plan(new_york(MONDAY, 17, 55), lead)
    assert wake is None and window.start == new_york(MONDAY, 18), "CME's evening session, not Tuesday's 09:30"
    (tmp_path / "alone").mkdir()
    alone = rig(tmp_path / "alone", new_york(MONDAY, 17, 55), tickers=("MSFT",))
    assert alone.connection().sessions.plan(new_york(MONDAY, 17, 55), lead)[1].start == \
        new_york(MONDAY + datetime.timedelta(days=1), 9, 30), "without a future, the stocks' hours alone"
    stream = FakeStream(Deliver(heartbeat()), Call(rigged.duties.stop), Deliver(heartbeat()))
    rigged.clients.streams.extend([stream, FakeStream(Fail(closed()))])
    rigged.run()
    assert stream.sent[:5] == [("login", []), ("level_one_equity_subs", ["MSFT"]), ("chart_equity_subs", ["MSFT"]),
                               ("level_one_futures_subs", ["/ES"]), ("chart_futures_subs", ["/ES"])]
