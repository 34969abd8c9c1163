"""The real schwab-py client against the simulator, run as its own process."""

from __future__ import annotations

import asyncio
import datetime
import json
import time
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from schwab.streaming import StreamClient, UnexpectedResponseCode
from websockets.exceptions import ConnectionClosed

from common import config as config_module
from common.config import Config
from common.feed.schwab_client import make_client, make_stream_client
from common.feed.schwab_socket import Pacing
from common.simulator import trade_log
from common.transport.messages import EquityTrade, IndexLevel, MinuteBar
from tests.helpers.schwab_recorder import Recorder, ingest_records, record_session
from tests.helpers.simulator_process import issued_token, log_out, simulator


@dataclass
class Sim:
    url: str
    report_path: Path
    trades_path: Path

    def report(self) -> dict:
        return httpx.get(f"{self.url}/sim/report").json()

    def sent_trades(self) -> dict[str, list[dict]]:
        """The trades the last report counted (it flushed them to the log before answering)."""
        return trade_log.read(self.trades_path)


@pytest.fixture
def sim(tmp_path: Path) -> Iterator[Sim]:
    report, trades, log = tmp_path / "report.json", tmp_path / "trades.jsonl", tmp_path / "simulator.log"
    with simulator("--seed", "42", "--rate", "400", "--report", str(report), "--trade-log", str(trades),
                   "--heartbeat", "0.3", "--bar-seconds", "1", log=log) as url:
        yield Sim(url, report, trades)
        started = time.monotonic()
    assert time.monotonic() - started < 2.0, "SIGTERM to exit in under two seconds"
    exit_report = json.loads(report.read_text())
    assert exit_report["simulated"] is True
    assert exit_report["counts"]["trades"] == sum(map(len, trade_log.read(trades).values())), \
        "on exit the trade log holds every trade counted"
    logged = [json.loads(line) for line in log.read_text().splitlines()]
    assert any("SIMULATED" in line["msg"] for line in logged)


@pytest.fixture
def config(sim: Sim, tmp_path: Path) -> Config:
    """No Schwab credentials, and a token the simulator issued whose access part has expired: the first call
    refreshes it."""
    cfg = config_module.load({"STREAMING_VAR": str(tmp_path / "var"), "SIMULATOR_URL": sim.url})
    assert cfg.uses_simulator
    cfg.schwab_token_path.parent.mkdir(parents=True, mode=0o700)
    token = {**issued_token(sim.url), "expires_at": int(time.time()) - 3600}
    cfg.schwab_token_path.write_text(json.dumps({"creation_timestamp": int(time.time()) - 3600, "token": token}))
    return cfg


async def pump(stream: StreamClient, done, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not done():
        assert time.monotonic() < deadline, "timed out waiting for the simulator"
        await asyncio.wait_for(stream.handle_message(), 5)


def option_symbols(chain: dict) -> list[str]:
    return [c["symbol"] for side in ("callExpDateMap", "putExpDateMap")
            for strikes in chain[side].values() for listed in strikes.values() for c in listed]


def test_schwab_py_streams_from_the_simulator(sim: Sim, config: Config):
    got: dict[str, list[dict]] = defaultdict(list)
    recorder = Recorder()

    async def session() -> None:
        client = make_client(config, asyncio=True)
        today = datetime.date.today()
        response = await client.get_option_chain("SPY", strike_count=2, from_date=today,
                                                 to_date=today + datetime.timedelta(days=10))
        assert response.status_code == 200
        chain = response.json()
        contracts = option_symbols(chain)
        assert chain["status"] == "SUCCESS" and len(contracts) >= 4
        assert all(today <= datetime.date.fromisoformat(k[:10]) <= today + datetime.timedelta(days=10)
                   for k in chain["callExpDateMap"])

        stream = make_stream_client(client)
        stream.set_json_decoder(recorder)
        stream.add_level_one_equity_handler(got["equity"].append)
        stream.add_level_one_option_handler(got["option"].append)
        stream.add_chart_equity_handler(got["chart"].append)
        await stream.login()
        await pump(stream, lambda: recorder.heartbeats() > 0)  # idle after login: heartbeats

        await stream.level_one_equity_subs(["SPY", "QQQ"])
        await stream.level_one_option_subs(contracts[:4])
        await stream.chart_equity_subs(["SPY"])
        await pump(stream, lambda: got["chart"] and len(got["equity"]) > 20 and len(got["option"]) > 4)

        with pytest.raises(UnexpectedResponseCode) as unavailable:
            await stream.level_one_futures_options_subs(["./OZCZ23C565"])
        assert unavailable.value.response["response"][0]["content"]["code"] == 11
        with pytest.raises(UnexpectedResponseCode) as limit:
            await stream.level_one_equity_add([f"Z{i}" for i in range(499)])
        assert limit.value.response["response"][0]["content"]["code"] == 19

        second = make_stream_client(client)
        with pytest.raises(UnexpectedResponseCode) as busy:
            await second.login()
        assert busy.value.response["response"][0]["content"]["code"] == 12

        await pump(stream, lambda: len(got["equity"]) > 40)
        await stream.logout()
        with pytest.raises(ConnectionClosed):  # take everything sent before the logout, then the close
            await pump(stream, lambda: False)
        await client.close_async_session()

    asyncio.run(session())

    token = json.loads(config.schwab_token_path.read_text())["token"]
    assert token["access_token"].startswith("SIM.") and token["expires_at"] > time.time() + 1500
    assert config.schwab_token_path.stat().st_mode & 0o777 == 0o600

    equity_items = [item for message in got["equity"] for item in message["content"]]
    seen: dict[str, dict] = {}
    trades: dict[str, list[tuple[int, int]]] = defaultdict(list)
    for item in equity_items:
        key = item["key"]
        if key not in seen:
            assert {"BID_PRICE", "ASK_PRICE", "LAST_PRICE", "TOTAL_VOLUME", "TRADE_TIME_MILLIS"} <= item.keys()
            assert {"assetMainType", "cusip", "delayed"} <= item.keys()
            seen[key] = dict(item)
            continue
        changed = {k: v for k, v in item.items() if k not in ("key", "delayed")}
        assert changed and len(changed) < len(seen[key]) - 5
        assert all(seen[key][k] != v for k, v in changed.items()), "an update repeated an unchanged field"
        seen[key].update(changed)
        if "TOTAL_VOLUME" in changed:
            trades[key].append((seen[key]["TRADE_TIME_MILLIS"], seen[key]["TOTAL_VOLUME"]))
    assert set(seen) == {"SPY", "QQQ"}

    option_items = [item for message in got["option"] for item in message["content"]]
    first_option = option_items[0]
    assert {"DELTA", "GAMMA", "THETA", "VEGA", "RHO", "VOLATILITY", "STRIKE_TYPE", "CONTRACT_TYPE",
            "UNDERLYING_PRICE", "MARK", "BID_PRICE", "ASK_PRICE"} <= first_option.keys()
    bar = got["chart"][0]["content"][0]
    assert {"OPEN_PRICE", "HIGH_PRICE", "LOW_PRICE", "CLOSE_PRICE", "VOLUME", "CHART_TIME_MILLIS",
            "CHART_DAY", "SEQUENCE", "key", "seq"} == bar.keys()
    assert bar["LOW_PRICE"] <= min(bar["OPEN_PRICE"], bar["CLOSE_PRICE"]) <= bar["HIGH_PRICE"]

    report = sim.report()
    counts = report["counts"]
    assert counts["token_refreshes"] == 1
    assert counts["heartbeats"] >= 1
    assert report["services"]["LEVELONE_EQUITIES"]["items"] == len(equity_items)
    assert report["services"]["LEVELONE_EQUITIES"]["frames"] == len(got["equity"])
    assert counts["option_items"] == len(option_items)
    assert counts["bars"] == sum(len(m["content"]) for m in got["chart"])
    assert counts["trades"] == sum(len(t) for t in trades.values())
    assert any(trades.values())
    assert report["trade_log"] == str(sim.trades_path)
    sent_trades = sim.sent_trades()
    for symbol in ("SPY", "QQQ"):
        sent = sent_trades.get(symbol, [])
        assert [(t["trade_time_ms"], t["day_volume"]) for t in sent] == trades[symbol]
        for before, after in zip(sent, sent[1:]):
            assert after["size"] == after["day_volume"] - before["day_volume"] > 0


def test_an_index_streams_a_moving_level_with_no_volume_and_ingest_makes_levels_of_it(sim: Sim, config: Config):
    """`$SPX` through the real client: LEVELONE_EQUITIES items of an index (no book, a volume that never moves)
    and its bars (no volume); ingest's edge and merge make index levels of them, and never a trade."""
    async def subscribe(stream: StreamClient) -> None:
        await stream.level_one_equity_subs(["$SPX"])
        await stream.chart_equity_subs(["$SPX"])

    recorder = record_session(config, subscribe, lambda r: r.items("CHART_EQUITY") > 1 and len(r.messages) > 30)
    snapshot = recorder.entries("LEVELONE_EQUITIES")[0]["content"][0]
    assert (snapshot["key"], snapshot["assetMainType"], snapshot["8"], snapshot["1"]) == ("$SPX", "INDEX", 0, 0), \
        "a level, no volume, no bid"
    records = ingest_records(recorder.entries())
    assert {type(record) for record in records} == {IndexLevel, MinuteBar}
    levels = [record.level for record in records if isinstance(record, IndexLevel)]
    assert len(set(levels)) > 10 and all(5000 < level < 7000 for level in levels)
    assert {record.volume for record in records if isinstance(record, MinuteBar)} == {0.0}


def test_a_future_streams_trades_in_its_active_contract_and_bars_through_the_real_client(sim: Sim, config: Config):
    """`/ES` on LEVELONE_FUTURES and CHART_FUTURES through the real client: ingest's edge and merge make trades,
    each in the active contract Schwab names, and the bars as a stock's."""
    async def subscribe(stream: StreamClient) -> None:
        await stream.level_one_futures_subs(["/ES"])
        await stream.chart_futures_subs(["/ES"])

    recorder = record_session(config, subscribe, lambda r: r.items("CHART_FUTURES") > 1 and len(r.messages) > 30)
    snapshot = recorder.entries("LEVELONE_FUTURES")[0]["content"][0]
    assert (snapshot["key"], snapshot["assetMainType"], snapshot["27"]) == ("/ES", "FUTURE", "/ES")
    records = ingest_records(recorder.entries())
    trades = [record for record in records if isinstance(record, EquityTrade)]
    bars = [record for record in records if isinstance(record, MinuteBar)]
    assert len(trades) > 5 and {trade.contract for trade in trades} == {snapshot["34"]}
    assert snapshot["34"].startswith("/ES") and len(snapshot["34"]) == 6, "a quarterly contract: /ESZ26"
    assert all(price % 0.25 == 0 for trade in trades for price in (trade.bid, trade.ask)), "quarter points"
    assert bars and {bar.symbol for bar in bars} == {"/ES"} and {bar.chart_sequence for bar in bars} == {-1}


def test_ingest_reads_the_real_client_in_bursts_and_loses_nothing(sim: Sim, config: Config):
    """ingest's Pacing over schwab-py's socket: unread while it rests, then everything that came meanwhile is
    ready at once; every item the simulator sent is still handed over, in order of sending."""
    got: list[dict] = []
    bursts: list[int] = []

    async def session() -> None:
        client = make_client(config, asyncio=True)
        stream = make_stream_client(client)
        stream.add_level_one_equity_handler(got.append)
        await stream.login()
        await stream.level_one_equity_subs(["SPY", "QQQ"])
        await pump(stream, lambda: len(got) > 5)
        pacing = Pacing(stream, pace=0.2)
        transport = stream._socket.transport
        while len(bursts) < 3:
            resting = asyncio.ensure_future(pacing.rest())
            await asyncio.sleep(0.05)
            assert not transport.is_reading(), "the socket is left unread while ingest rests"
            await resting
            assert transport.is_reading()
            await asyncio.wait_for(stream.handle_message(), 5)
            burst = 1
            while pacing.backlog():
                await stream.handle_message()
                burst += 1
            bursts.append(burst)
        await log_out(stream, client)

    asyncio.run(session())
    assert min(bursts) > 1, f"0.2 s of a 400 updates/s feed arrive as one burst of messages: {bursts}"
    assert sim.report()["services"]["LEVELONE_EQUITIES"]["frames"] == len(got), "every message handed over"


def test_rest_endpoints_through_the_sync_client(sim: Sim, config: Config):
    client = make_client(config, asyncio=False)
    hours = client.get_market_hours([client.MarketHours.Market.EQUITY, client.MarketHours.Market.OPTION],
                                    date=datetime.date(2025, 10, 21))
    assert hours.status_code == 200
    regular = hours.json()["equity"]["EQ"]["sessionHours"]["regularMarket"][0]
    assert regular == {"start": "2025-10-21T09:30:00-04:00", "end": "2025-10-21T16:00:00-04:00"}
    assert hours.json()["option"]["EQO"]["isOpen"] is True

    puts = client.get_option_chain("QQQ", contract_type=client.Options.ContractType.PUT, strike_count=3).json()
    assert puts["callExpDateMap"] == {} and puts["putExpDateMap"]
    for expiry, strikes in puts["putExpDateMap"].items():
        assert len(strikes) == 3
        for strike, (contract,) in strikes.items():
            assert contract["putCall"] == "PUT" and float(strike) == contract["strikePrice"]
            assert contract["daysToExpiration"] == int(expiry.split(":")[1])
            assert -1 <= contract["delta"] <= 0 and contract["bid"] <= contract["mark"] <= contract["ask"]

    assert httpx.get(f"{sim.url}/trader/v1/userPreference").status_code == 401
    bad = httpx.post(f"{sim.url}/v1/oauth/token", data={"grant_type": "authorization_code", "code": "x"})
    assert bad.status_code == 400 and bad.json()["error"] == "invalid_grant"
    bad = httpx.post(f"{sim.url}/v1/oauth/token", data={"grant_type": "password"})
    assert bad.status_code == 400 and bad.json()["error"] == "invalid_client"
    assert sim.report()["counts"]["token_refreshes"] == 1
