"""The options actor's work in-process: the real schwab-py client reads the simulator's chains.

No supervisord and no bus: `ContractPicker` is handed the client factory and
a `send` that keeps what it publishes, and its loop's hooks are called with
an injected monotonic time.
"""

from __future__ import annotations

import datetime
import logging

from actors.options import ContractPicker, new_york_today
from common import config as config_module
from common.analytics.option_chain import decode_chain, select_contracts
from common.feed import option_symbols
from common.feed.schwab_client import make_client
from common.observe.stats import ActorStats
from common.transport.messages import Envelope, OptionSubscription
from common.transport.topics import kind_of
from tests.helpers.options import option_quote
from tests.helpers.simulator_process import simulator


def test_contracts_are_chosen_from_the_real_chain_repeated_and_recentred_on_a_move(tmp_path):
    with simulator("--seed", "42") as url:
        config = config_module.load({"SIMULATOR_URL": url, "SCHWAB_TOKEN_PATH": str(tmp_path / "token.json"),
                                     "STREAM_TICKERS": "SPY,QQQ", "OPTION_REFRESH_INTERVAL": "30s"})
        sent: list[tuple[str, list[OptionSubscription]]] = []
        picker = ContractPicker(config, lambda: make_client(config, asyncio=False), ActorStats("options", 1.0),
                                logging.getLogger("options-test"),
                                lambda records: sent.append((kind_of(records), records)))

        picker.duty(now=0.0)
        assert [(kind, [wish.underlying for wish in wishes]) for kind, wishes in sent] == [
            ("option_subscription", ["SPY", "QQQ"])]
        client, today = make_client(config, asyncio=False), new_york_today()
        for wish in sent[0][1]:
            response = client.get_option_chain(wish.underlying, from_date=today,
                                               to_date=today + datetime.timedelta(days=10))
            chain = decode_chain(response.content)
            centre = picker.centres[wish.underlying]
            assert wish.contracts == select_contracts(chain, config.option_strike_band, today, spot=centre)[1]
            assert len(wish.contracts) >= 2, "a band of calls and puts"

        picker.duty(now=1.0)
        assert len(sent) == 1, "the wish is repeated every OPTION_REFRESH_INTERVAL, not every turn"
        assert picker.due() == 30.0

        moved = picker.centres["SPY"] * (1 + 2 * config.option_recenter_threshold)
        picker.take(Envelope("host/ingest/option", 1, 1, 0, [option_quote("SPY", moved), option_quote("QQQ", None)]))
        picker.duty(now=2.0)
        assert [(kind, [wish.underlying for wish in wishes]) for kind, wishes in sent[1:]] == [
            ("option_subscription", ["SPY"])], "only the moved ticker's band is read again, and sent at once"

        picker.duty(now=30.0)
        assert [wish.underlying for wish in sent[-1][1]] == ["SPY", "QQQ"], "then the whole wish is repeated"
        assert (picker.stats.records_in, picker.stats.records_out, picker.stats.errors) == (2, 5, 0)


def test_an_index_chain_is_read_bounded_and_only_the_root_that_settles_at_the_close_is_streamed(tmp_path):
    """`$SPX` lists SPXW on every expiry and SPX's AM-settled monthly beside it on third Fridays, too many strikes
    to send whole: unbounded, the real client gets Schwab's TooBigBody; the picker reads a strike count around the
    level and wishes for SPXW contracts of the nearest expiry only."""
    with simulator("--seed", "42") as url:
        config = config_module.load({"SIMULATOR_URL": url, "SCHWAB_TOKEN_PATH": str(tmp_path / "token.json"),
                                     "STREAM_TICKERS": "$SPX"})
        client, today = make_client(config, asyncio=False), new_york_today()
        unbounded = client.get_option_chain("$SPX", from_date=today, to_date=today + datetime.timedelta(days=10))
        assert unbounded.status_code == 500 and "TooBigBody" in unbounded.text
        sent: list[OptionSubscription] = []
        picker = ContractPicker(config, lambda: make_client(config, asyncio=False), ActorStats("options", 1.0),
                                logging.getLogger("options-test"), sent.extend)
        picker.duty(now=0.0)
        (wish,) = sent
        assert wish.underlying == "$SPX" and picker.stats.errors == 0
        contracts = [option_symbols.parse(symbol) for symbol in wish.contracts]
        assert {contract.underlying for contract in contracts} == {"SPXW"}
        assert len({contract.expiration for contract in contracts}) == 1 and contracts[0].expiration >= today
        centre = picker.centres["$SPX"]
        assert all(abs(contract.strike - centre) <= config.option_strike_band * centre for contract in contracts)
        assert len(contracts) >= 20, "a 2 % band of 5-point strikes, calls and puts"
