"""A re-centred strike band through ingest's option changes, the real schwab-py client and the simulator.

Only the difference moves: one UNSUBS of the contracts that left the band, one
ADD of those that entered it. Contracts that stay are not asked for again, so
they get no second full snapshot (the simulator, like Schwab, sends one only to
a key new to the subscription: the item that carries "assetMainType").
"""

from __future__ import annotations

import asyncio
import datetime
import json
import logging
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
from schwab.streaming import StreamClient

from common import config as config_module
from common.analytics.option_chain import (
    NEW_YORK,
    band_changes,
    decode_chain,
    needs_recentre,
    select_contracts,
)
from common.config import Config
from common.feed.option_contracts import OptionContracts, apply_option_changes
from common.feed.schwab_client import make_client, make_stream_client
from common.transport.messages import OptionSubscription
from tests.helpers.schwab_recorder import Recorder
from tests.helpers.simulator_process import control_headers, simulator

OPTIONS = "LEVELONE_OPTIONS"


class WireLog(Recorder):
    """Every message in the order it arrived: schwab-py hands data read while awaiting a response to handlers later."""

    def option_items_after(self, command: str) -> list[dict]:
        """LEVELONE_OPTIONS items that arrived after the last response to `command`."""
        answers = [i for i, m in enumerate(self.messages)
                   if any(r["service"] == OPTIONS and r["command"] == command for r in m.get("response", []))]
        assert answers, f"no response to {OPTIONS} {command}"
        return option_items(self.messages[answers[-1] + 1:])

    def snapshots(self) -> Counter[str]:
        return Counter(item["key"] for item in option_items(self.messages) if "assetMainType" in item)


def option_items(messages: list[dict]) -> list[dict]:
    return [item for m in messages for data in m.get("data", []) if data["service"] == OPTIONS
            for item in data["content"]]


def record_option_requests(stream: StreamClient) -> list[tuple[str, list[str]]]:
    """The LEVELONE_OPTIONS commands asked of schwab-py, in order, with their keys."""
    asked: list[tuple[str, list[str]]] = []
    for command in ("subs", "add", "unsubs"):
        send = getattr(stream, f"level_one_option_{command}")

        async def recorded(symbols: list[str], *args, _command: str = command.upper(), _send=send, **kwargs):
            asked.append((_command, list(symbols)))
            return await _send(symbols, *args, **kwargs)

        setattr(stream, f"level_one_option_{command}", recorded)
    return asked


async def pump(stream: StreamClient, done: Callable[[], bool], timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while not done():
        assert time.monotonic() < deadline, "timed out waiting for the simulator"
        await asyncio.wait_for(stream.handle_message(), 5)


def simulator_requests(log: Path) -> list[tuple[str, int]]:
    """(command, keys subscribed after it) for each LEVELONE_OPTIONS request the simulator answered."""
    lines = [json.loads(line) for line in log.read_text().splitlines()]
    return [(line["command"], line["keys"]) for line in lines
            if line["msg"] == "request" and line.get("service") == OPTIONS]


async def bands_around_a_move(client: Any, config: Config, move: float) -> tuple[float, list[str], list[str]]:
    """SPY's band centre from its chain, the band there, and the band at that centre moved by `move` (a fraction)."""
    today = datetime.datetime.now(NEW_YORK).date()
    chain = decode_chain(
        (await client.get_option_chain("SPY", from_date=today, to_date=today + datetime.timedelta(days=10))).content)
    centre, before = select_contracts(chain, config.option_strike_band, today)
    _, after = select_contracts(chain, config.option_strike_band, today, spot=centre * (1 + move))
    return centre, before, after


async def streaming_band(client: Any, config: Config, band: list[str], logger: logging.Logger,
                         ) -> tuple[StreamClient, WireLog, list[tuple[str, list[str]]], OptionContracts]:
    """A logged-in stream, recording what it reads and asks, with `band` subscribed through ingest's changes."""
    stream = make_stream_client(client)
    wire = WireLog()
    stream.set_json_decoder(wire)
    asked = record_option_requests(stream)
    contracts = OptionContracts(config.stream_max_keys)
    await stream.login()
    contracts.want(OptionSubscription("SPY", band, time.time_ns()))
    await apply_option_changes(stream, contracts, logger, config.stream_command_timeout)
    return stream, wire, asked, contracts


def test_a_moved_underlying_unsubs_what_left_and_adds_what_entered(tmp_path: Path):
    log = tmp_path / "simulator.log"
    with simulator("--seed", "42", "--rate", "800", "--heartbeat", "0.3", log=log) as url:
        config = config_module.load({"SIMULATOR_URL": url, "SCHWAB_TOKEN_PATH": str(tmp_path / "token.json")})
        threshold = config.option_recenter_threshold
        logger = logging.getLogger("test_option_recentre")

        async def session() -> tuple[list[str], list[str], list[tuple[str, list[str]]], WireLog]:
            client = make_client(config, asyncio=True)
            centre, before, after = await bands_around_a_move(client, config, 1.5 * threshold)
            assert needs_recentre(centre, centre * (1 + 1.5 * threshold), threshold)
            stream, wire, asked, contracts = await streaming_band(client, config, before, logger)
            await pump(stream, lambda: wire.snapshots().keys() >= set(before))

            recentred_at = len(wire.messages)
            contracts.want(OptionSubscription("SPY", after, time.time_ns()))
            await apply_option_changes(stream, contracts, logger, config.stream_command_timeout)
            # Every contract now wanted updates once more (not its snapshot): the simulator has gone round them all.
            await pump(stream, lambda: {item["key"] for item in option_items(wire.messages[recentred_at:])
                                        if "assetMainType" not in item} >= set(after))
            await stream.logout()
            await client.close_async_session()
            return before, after, asked, wire

        before, after, asked, wire = asyncio.run(session())

    entered, left = band_changes(before, after)
    stayed = set(before) & set(after)
    assert entered and left and stayed, "the move must both drop and add contracts, and keep some"
    assert asked == [("SUBS", before), ("UNSUBS", left), ("ADD", entered)]
    assert simulator_requests(log) == [("SUBS", len(before)), ("UNSUBS", len(stayed)), ("ADD", len(after))]

    assert wire.snapshots() == Counter(before) + Counter(entered), "one full snapshot per contract, stayed ones too"
    after_add = wire.option_items_after("ADD")
    assert {item["key"] for item in after_add if "assetMainType" in item} == set(entered)
    assert not {item["key"] for item in wire.option_items_after("UNSUBS")} & set(left), "a removed contract got data"


def test_contracts_refused_with_code_19_are_not_asked_again_and_the_rest_streams(tmp_path: Path, caplog):
    with simulator("--seed", "42", "--rate", "400", "--heartbeat", "0.3") as url:
        config = config_module.load({"SIMULATOR_URL": url, "SCHWAB_TOKEN_PATH": str(tmp_path / "token.json")})
        logger = logging.getLogger("test_option_recentre")

        async def session() -> tuple[OptionContracts, list[tuple[str, list[str]]], list[str], list[str], set[str]]:
            client = make_client(config, asyncio=True)
            _, before, after = await bands_around_a_move(client, config, 3 * config.option_recenter_threshold)
            stream, wire, asked, contracts = await streaming_band(client, config, before, logger)

            httpx.post(f"{url}/sim/fault", json={"fault": "code:19"}, headers=control_headers(url)).raise_for_status()
            contracts.want(OptionSubscription("SPY", after, time.time_ns()))
            await apply_option_changes(stream, contracts, logger, config.stream_command_timeout)
            await apply_option_changes(stream, contracts, logger, config.stream_command_timeout)  # not asked again
            refused_at = len(wire.messages)
            kept = set(before) & set(after)
            await pump(stream, lambda: {item["key"] for item in option_items(wire.messages[refused_at:])} >= kept)
            await stream.logout()
            await client.close_async_session()
            return contracts, asked, before, after, kept

        with caplog.at_level(logging.ERROR, "test_option_recentre"):
            contracts, asked, before, after, kept = asyncio.run(session())

    entered, left = band_changes(before, after)
    assert [command for command, _ in asked] == ["SUBS", "UNSUBS", "ADD"], "the refused ADD is not retried"
    assert contracts.streaming == kept and contracts.refused == frozenset(after)
    assert any("symbol limit (code 19)" in record.getMessage() for record in caplog.records)


def test_the_wanted_set_is_rebuilt_only_when_a_wish_changes_and_compared_only_when_something_moved():
    contracts = OptionContracts(max_keys=500)
    contracts.want(OptionSubscription("SPY", ["SPY_C1", "SPY_P1"], 1))
    contracts.want(OptionSubscription("QQQ", ["QQQ_C1"], 1))
    assert contracts.changes() == (["QQQ_C1", "SPY_C1", "SPY_P1"], [])
    contracts.streaming = frozenset(["QQQ_C1", "SPY_C1", "SPY_P1"])
    assert contracts.changes() == ([], [])
    target = contracts.target()
    contracts.want(OptionSubscription("SPY", ["SPY_P1", "SPY_C1"], 2))  # the same wish, repeated
    assert contracts.target() is target and contracts.changes() == ([], [])
    contracts.want(OptionSubscription("SPY", ["SPY_C2", "SPY_P1"], 3))
    assert contracts.changes() == (["SPY_C2"], ["SPY_C1"])
    contracts.streaming = frozenset()  # a new connection streams nothing yet
    assert contracts.changes() == (["QQQ_C1", "SPY_C2", "SPY_P1"], [])
