from __future__ import annotations

from datetime import date

import pytest
from schwab.orders.options import OptionSymbol

from common.feed.option_symbols import OptionContract, build, description, parse


@pytest.mark.parametrize(
    "symbol,contract",
    [
        ("SPY   251021C00580000", OptionContract("SPY", date(2025, 10, 21), "C", 580.0)),
        ("QQQ   240420P00500500", OptionContract("QQQ", date(2024, 4, 20), "P", 500.5)),
        ("SPXW  240420C05040000", OptionContract("SPXW", date(2024, 4, 20), "C", 5040.0)),
        ("F     250117P00012500", OptionContract("F", date(2025, 1, 17), "P", 12.5)),
        ("GOOGL 240517C00070000", OptionContract("GOOGL", date(2024, 5, 17), "C", 70.0)),
    ],
)
def test_round_trip(symbol, contract):
    assert parse(symbol) == contract
    assert build(*contract) == symbol
    underlying, expiration, put_call, strike = parse(symbol)
    assert (underlying, expiration, put_call, strike) == tuple(contract)


def test_agrees_with_schwab_py():
    ours = build("SPY", date(2025, 10, 21), "C", 580.0)
    assert OptionSymbol("SPY", date(2025, 10, 21), "C", "580").build() == ours
    assert description(parse(ours)) == "SPY 10/21/2025 580.00 C"


@pytest.mark.parametrize("bad", ["SPY", "SPY 251021C00580000", "SPY   251021X00580000", "SPY   251321C00580000",
                                 "SPY   251021C0058000", "spy   251021C00580000"])
def test_rejects_what_is_not_a_symbol(bad):
    with pytest.raises(ValueError):
        parse(bad)


def test_build_rejects_bad_parts():
    with pytest.raises(ValueError):
        build("SPY", date(2025, 10, 21), "X", 580.0)
    with pytest.raises(ValueError):
        build("TOOLONGX", date(2025, 10, 21), "C", 580.0)
