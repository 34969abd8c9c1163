"""The options actor's work with an injected client: a chain that cannot be read, and a token Schwab refuses."""

from __future__ import annotations

import datetime
import logging
import math

from actors.options import CHAIN_RETRY_FIRST, ContractPicker
from common import config as config_module
from common.observe.stats import ActorStats
from common.transport.topics import kind_of
from tests.helpers.options import ScriptedChains, chain_json, chain_response

TODAY = datetime.date(2026, 11, 24)
GOOD = chain_json(500.0, {"2026-11-24": [480, 495, 500, 505, 520]})


def picker(tmp_path, *clients: ScriptedChains) -> tuple[ContractPicker, list]:
    config = config_module.load({"STREAM_TICKERS": "SPY", "DATA_DIR": str(tmp_path), "RUN_DIR": str(tmp_path)})
    sent: list = []
    made = iter(clients)
    work = ContractPicker(config, lambda: next(made), ActorStats("options", 1.0), logging.getLogger("options-test"),
                          lambda records: sent.append((kind_of(records), records)), today=lambda: TODAY)
    return work, sent


def test_an_unreadable_chain_keeps_no_wish_and_is_read_again_a_second_later(tmp_path):
    client = ScriptedChains([chain_response(200, b'{"symbol": "SPY", "callExpDateMap": 7}'),
                             chain_response(200, GOOD)])
    work, sent = picker(tmp_path, client)
    work.duty(now=100.0)
    assert (sent, work.stats.errors) == ([], 1)
    assert 0.8 * CHAIN_RETRY_FIRST <= work.due() - 100.0 <= 1.2 * CHAIN_RETRY_FIRST, "a second, give or take its jitter"
    work.duty(now=100.5)
    assert client.asked == ["SPY"], "not before the retry is due"
    work.duty(now=101.2)
    assert client.asked == ["SPY", "SPY"] and sent == [], "chosen now, sent with the next repeat of every wish"
    work.duty(now=100.0 + work.config.option_refresh_interval)
    assert [wish.contracts for _, wishes in sent for wish in wishes] == [sorted(
        f"SPY   261124{side}00{strike}000" for side in "CP" for strike in (495, 500, 505))]


def test_a_refused_token_makes_a_fresh_client_whose_token_is_refreshed_first(tmp_path):
    refused, fresh = ScriptedChains([chain_response(401, {"error": "unauthorized"})]), ScriptedChains([])
    work, sent = picker(tmp_path, refused, fresh)
    work.duty(now=0.0)
    assert work.client is fresh and fresh.session.token["expires_at"] == 0
    assert refused.session.token["expires_at"] > 0
    assert (sent, work.stats.errors) == ([], 1)


def test_a_replay_has_no_one_to_ask_and_sends_no_wish(tmp_path):
    config = config_module.load({"STREAM_TICKERS": "SPY", "DATA_DIR": str(tmp_path), "RUN_DIR": str(tmp_path)})
    sent: list = []
    work = ContractPicker(config, None, ActorStats("options", 1.0), logging.getLogger("options-test"),
                          lambda records: sent.append((kind_of(records), records)))
    work.duty(now=0.0)
    assert sent == [] and work.due() == config.option_refresh_interval < math.inf
