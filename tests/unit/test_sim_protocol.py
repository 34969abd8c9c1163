"""The simulator's frames against the captured Schwab frames in tests/data (tests/helpers/schwab_frames.py)."""

from __future__ import annotations

import pytest

from common.feed.service import wire
from common.feed.services import chart_equity
from common.simulator import protocol
from common.simulator.market import Bar, Market
from common.simulator.protocol import (
    CHART_EQUITY,
    LEVELONE_EQUITIES,
    LEVELONE_OPTIONS,
    Session,
    Streamers,
)
from tests.helpers.schwab_frames import FIELD_ENUMS, raw_frames

T0 = 1_760_000_000_000
CALL = "SPY   251017C00580000"


def kind(value) -> str:
    return type(value).__name__


def all_fields(service: str) -> str:
    return ",".join(str(f.value) for f in FIELD_ENUMS[service])


def login(session: Session, requestid: str = "0") -> dict:
    return session.handle({"service": "ADMIN", "command": "LOGIN", "requestid": requestid,
                           "parameters": {"Authorization": "token"}}, T0).frame


def subs(session: Session, service: str, keys: list[str], command: str = "SUBS", requestid: str = "1",
         fields: str | None = None) -> protocol.Reply:
    parameters = {"keys": ",".join(keys), "fields": all_fields(service) if fields is None else fields}
    return session.handle({"service": service, "command": command, "requestid": requestid,
                           "parameters": parameters}, T0)


@pytest.fixture
def session() -> Session:
    s = Session(1, protocol.CUSTOMER_ID, Streamers(), bar_ms=60_000)
    assert login(s)["response"][0]["content"]["code"] == 0
    return s


def declared(service: str, market: Market) -> dict:
    """The Python type each field is declared with (before Schwab's compact doubles)."""
    if service == LEVELONE_EQUITIES:
        return protocol.field_values(protocol.LEVELONE_EQUITIES, market.quote("SPY", T0))
    return protocol.field_values(protocol.LEVELONE_OPTIONS, market.option_quote(CALL, T0))


def snapshot(service: str, session: Session, market: Market) -> dict:
    if service == LEVELONE_EQUITIES:
        subs(session, service, ["SPY"])
        return session.ticker_update(market.quote("SPY", T0))[0]
    subs(session, service, [CALL])
    return session.option_update(market.option_quote(CALL, T0))


def chart(market: Market) -> dict:
    for i in range(600):
        market.step("SPY", T0 + i * 100)
    return chart_equity.item(market.bars_after("SPY", 0, T0 + 120_000)[0])


@pytest.mark.parametrize("service", [LEVELONE_EQUITIES, LEVELONE_OPTIONS, CHART_EQUITY])
def test_first_item_has_the_fixture_keys_and_types(service, session):
    market = Market(42)
    ours = chart(market) if service == CHART_EQUITY else snapshot(service, session, market)
    types = {} if service == CHART_EQUITY else declared(service, market)
    for frame in raw_frames()[service]:
        assert frame.keys() == protocol.data(service, [ours], T0)["data"][0].keys()
        for theirs in frame["content"]:
            assert ours.keys() == theirs.keys()
            for key, value in theirs.items():
                if isinstance(types.get(key), float):
                    # A double: Schwab writes a whole one as an integer ("20": 70), so does the simulator.
                    assert isinstance(value, (int, float)) and not isinstance(value, bool), key
                    assert isinstance(ours[key], (int, float)) and not isinstance(ours[key], bool), key
                else:
                    assert kind(ours[key]) == kind(value), (key, ours[key], value)


def test_declared_doubles_are_written_like_schwab():
    assert wire(70.0) == 70 and isinstance(wire(70.0), int)
    assert wire(70.5) == 70.5 and wire(3) == 3 and wire("C") == "C"
    item = chart_equity.item(Bar("SPY", 3, T0 - T0 % 60_000, 580.0, 580.5, 579.99, 580.25, 26))
    assert item["2"] == 580 and isinstance(item["2"], int)
    assert item["6"] == 26.0 and isinstance(item["6"], float)  # chart volume is always written as a double
    assert item["8"] == (T0 - T0 % 60_000) // 86_400_000


def test_later_items_carry_only_changed_fields(session):
    market = Market(42)
    first = snapshot(LEVELONE_EQUITIES, session, market)
    assert session.ticker_update(market.quote("SPY", T0)) == (None, None)  # nothing changed, nothing sent
    while (event := market.step("SPY", T0 + 100)).trade is None:
        pass
    item, trade = session.ticker_update(event.quote)
    numbered = {k for k in item if k.isdigit()}
    assert set(item) - numbered == {"key", "delayed"}
    assert {"8", "34", "35"} <= numbered < set(first)
    assert all(item[k] != first[k] for k in numbered)
    assert trade == protocol.SentTrade("SPY", event.trade.time_ms, event.trade.price, event.trade.day_volume,
                                       event.trade.day_volume - first["8"])
    event = market.step("SPY", T0 + 200)
    item, trade = session.ticker_update(event.quote)
    assert (trade is None) == (event.trade is None)


def test_requested_fields_only(session):
    market = Market(42)
    subs(session, LEVELONE_EQUITIES, ["SPY", "QQQ"], fields="0,1,2,3,8")
    item = session.ticker_update(market.quote("QQQ", T0))[0]
    assert {k for k in item if k.isdigit()} == {"1", "2", "3", "8"}


def test_responses_echo_the_request(session):
    reply = subs(session, LEVELONE_EQUITIES, ["SPY"], requestid="17")
    body = reply.frame["response"][0]
    assert (body["service"], body["requestid"], body["command"], body["content"]["code"]) == \
        (LEVELONE_EQUITIES, "17", "SUBS", 0)
    assert reply.snapshot == ("SPY",)
    assert subs(session, LEVELONE_EQUITIES, ["QQQ"], command="ADD", requestid="18").snapshot == ("QQQ",)
    assert session.keys(LEVELONE_EQUITIES) == ["SPY", "QQQ"]
    assert subs(session, LEVELONE_EQUITIES, ["SPY"], command="UNSUBS", requestid="19").snapshot == ()
    assert session.keys(LEVELONE_EQUITIES) == ["QQQ"]
    assert subs(session, LEVELONE_EQUITIES, ["AAPL"], requestid="20").snapshot == ("AAPL",)
    assert session.keys(LEVELONE_EQUITIES) == ["AAPL"]


def code(reply: protocol.Reply) -> int:
    return reply.frame["response"][0]["content"]["code"]


def test_error_codes():
    streamers = Streamers()
    fresh = Session(1, protocol.CUSTOMER_ID, streamers, 60_000)
    assert code(subs(fresh, LEVELONE_EQUITIES, ["SPY"])) == protocol.NOT_LOGGED_IN
    login(fresh)
    assert code(subs(fresh, "LEVELONE_FUTURES_OPTIONS", ["./OZCZ23C565"], fields="0,1")) == \
        protocol.SERVICE_NOT_AVAILABLE
    too_many = subs(fresh, LEVELONE_EQUITIES, [f"S{i}" for i in range(501)])
    assert code(too_many) == protocol.SYMBOL_LIMIT and fresh.keys(LEVELONE_EQUITIES) == []
    assert code(subs(fresh, LEVELONE_EQUITIES, [f"S{i}" for i in range(500)])) == 0
    assert code(subs(fresh, LEVELONE_EQUITIES, ["ONE_MORE"], command="ADD")) == protocol.SYMBOL_LIMIT

    second = Session(2, protocol.CUSTOMER_ID, streamers, 60_000)
    reply = second.handle({"service": "ADMIN", "command": "LOGIN", "requestid": "0",
                           "parameters": {"Authorization": "token"}}, T0)
    assert code(reply) == protocol.CONNECTION_LIMIT and reply.close

    logout = fresh.handle({"service": "ADMIN", "command": "LOGOUT", "requestid": "9", "parameters": {}}, T0)
    assert code(logout) == 0 and logout.close and not fresh.logged_in
    assert code(login_reply := second.handle({"service": "ADMIN", "command": "LOGIN", "requestid": "1",
                                              "parameters": {"Authorization": "t"}}, T0)) == 0, login_reply


def test_heartbeat_and_chart_only_after_subscription(session):
    assert protocol.heartbeat(T0) == {"notify": [{"heartbeat": str(T0)}]}
    market = Market(42)
    for i in range(1200):
        market.step("SPY", T0 + i * 100)
    bars = market.bars_after("SPY", 0, T0 + 120_000)
    assert session.chart_update(bars) == []  # not subscribed
    session.handle({"service": CHART_EQUITY, "command": "SUBS", "requestid": "3",
                    "parameters": {"keys": "SPY", "fields": all_fields(CHART_EQUITY)}}, bars[-1].start_ms + 1)
    sent = session.chart_update(bars)
    assert [item["7"] for item in sent] == [bars[-1].start_ms]
    assert session.chart_update(bars) == []
