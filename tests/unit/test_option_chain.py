"""Contract selection from Schwab's chain JSON, and option rows."""

from datetime import date

import msgspec
import pytest

from common.analytics.option_chain import (
    ChainError,
    band_changes,
    decode_chain,
    expiry_ms,
    needs_recentre,
    off_centre,
    option_row,
    select_contracts,
)
from common.feed.option_symbols import build
from common.transport.messages import OptionQuote
from tests.helpers.options import chain_json, contract


def chain(spot: float, expiries: dict[str, list[float]]):
    """A chain as the options actor gets it: the response body, decoded."""
    return decode_chain(msgspec.json.encode(chain_json(spot, expiries)))


def test_nearest_expiry_within_the_band_calls_and_puts():
    response = chain(500.0, {"2026-11-24": [480, 495, 500, 505, 520], "2026-11-25": [500]})
    spot, symbols = select_contracts(response, band=0.02, today=date(2026, 11, 24))
    assert spot == 500.0
    assert symbols == sorted(
        f"SPY   261124{side}00{strike}000" for side in "CP" for strike in (495, 500, 505)
    )


def test_expired_dates_are_skipped_and_the_next_expiry_is_used():
    response = chain(500.0, {"2026-11-23": [500], "2026-11-27": [500]})
    _, symbols = select_contracts(response, band=0.02, today=date(2026, 11, 24))
    assert symbols == ["SPY   261127C00500000", "SPY   261127P00500000"]


def test_empty_band_falls_back_to_the_nearest_strike():
    _, symbols = select_contracts(chain(500.0, {"2026-11-24": [450, 560]}), band=0.01, today=date(2026, 11, 24))
    assert symbols == ["SPY   261124C00450000", "SPY   261124P00450000"]


@pytest.mark.parametrize("response, message", [
    ({"symbol": "SPY", "status": "FAILED"}, "status 'FAILED'"),
    ({"symbol": "SPY", "status": "SUCCESS"}, "no underlyingPrice"),
    (chain_json(500.0, {"2026-11-20": [500]}), "no expiry on or after 2026-11-24"),
    ({**chain_json(500.0, {}), "callExpDateMap": {"soon:0": {"500.0": [contract("2026-11-24", "CALL", 500)]}}},
     "expiry 'soon:0' that is not a date"),
])
def test_unusable_chain_says_why(response, message):
    with pytest.raises(ChainError, match=message):
        select_contracts(decode_chain(msgspec.json.encode(response)), band=0.02, today=date(2026, 11, 24))


@pytest.mark.parametrize("body, place", [
    (b"<html>502 Bad Gateway</html>", "cannot be read: JSON is malformed"),
    (b'{"underlyingPrice": "five hundred"}', r"\$.underlyingPrice"),
    (b'{"callExpDateMap": {"2026-11-24:0": {"500.0": [{"symbol": "X", "strikePrice": "500"}]}}}',
     r"\$.callExpDateMap\[...\]\[...\]\[0\].strikePrice"),
    (b'{"putExpDateMap": {"2026-11-24:0": {"500.0": [{"strikePrice": 500}]}}}', "missing required field `symbol`"),
])
def test_a_chain_body_of_the_wrong_shape_is_refused_naming_the_place(body, place):
    with pytest.raises(ChainError, match=place):
        decode_chain(body)


def test_a_chain_body_keeps_only_what_selection_reads():
    body = msgspec.json.encode({**chain_json(500.0, {"2026-11-24": [500]}), "volatility": 29.0, "numberOfContracts": 2})
    listed = decode_chain(body).calls["2026-11-24:0"]["500.0"][0]
    assert (listed.symbol, listed.strike) == ("SPY   261124C00500000", 500.0)


def symbols_at(strikes: range) -> list[str]:
    return sorted(f"SPY   261124{side}00{strike}000" for side in "CP" for strike in strikes)


@pytest.mark.parametrize("spot, moved", [
    (500.0, False), (504.9, False), (495.1, False),
    (505.0, False),  # exactly at the threshold: not past it
    (505.1, True), (494.9, True), (560.0, True), (440.0, True),
])
def test_recentre_only_past_the_threshold_either_way(spot, moved):
    assert needs_recentre(500.0, spot, threshold=0.01) is moved


def test_off_centre_needs_a_band_and_a_spot_seen_since():
    centres = {"SPY": 500.0, "QQQ": 400.0, "IWM": 200.0}
    spots = {"SPY": 506.0, "QQQ": 401.0, "DIA": 300.0}
    assert off_centre(centres, spots, threshold=0.01) == ["SPY"]


def test_a_moved_spot_keeps_the_strikes_still_in_band_and_swaps_only_the_rest():
    response = chain(500.0, {"2026-11-24": list(range(480, 531)), "2026-11-25": [500]})
    centre, before = select_contracts(response, band=0.02, today=date(2026, 11, 24))
    moved, after = select_contracts(response, band=0.02, today=date(2026, 11, 24), spot=505.5)
    assert (centre, before) == (500.0, symbols_at(range(490, 511)))
    assert (moved, after) == (505.5, symbols_at(range(496, 516)))  # 505.5 +- 10.11
    entered, left = band_changes(before, after)
    assert entered == symbols_at(range(511, 516))
    assert left == symbols_at(range(490, 496))
    assert set(before) & set(after) == set(symbols_at(range(496, 511)))


def test_a_move_back_down_swaps_the_other_way():
    response = chain(500.0, {"2026-11-24": list(range(470, 531))})
    _, before = select_contracts(response, band=0.02, today=date(2026, 11, 24))
    _, after = select_contracts(response, band=0.02, today=date(2026, 11, 24), spot=494.0)
    assert band_changes(before, after) == (symbols_at(range(485, 490)), symbols_at(range(504, 511)))


def test_an_unmoved_band_changes_nothing():
    assert band_changes(symbols_at(range(495, 506)), reversed(symbols_at(range(495, 506)))) == ([], [])


def quote(**changes) -> OptionQuote:
    fields = dict(symbol="SPY   261124C00500000", underlying="SPY", quote_time_ms=expiry_ms("2026-11-24") - 3_600_000,
                  contract_type="C", strike=500.0, expiration="2026-11-24", last=2.5, bid=2.4, ask=2.6, mark=2.5,
                  total_volume=1200, open_interest=5000, volatility=20.0, delta=0.52, gamma=0.08, theta=-0.9,
                  vega=0.05, rho=0.01, underlying_price=500.5, received_ns=1)
    return OptionQuote(**{**fields, **changes})


def test_row_keeps_schwab_greeks_and_turns_iv_percent_into_a_fraction():
    row = option_row(quote())
    assert (row.delta, row.gamma, row.theta, row.vega, row.rho) == (0.52, 0.08, -0.9, 0.05, 0.01)
    assert row.implied_volatility == pytest.approx(0.20)
    assert row.greeks_source == "schwab"
    assert (row.ticker, row.option_type, row.strike_price, row.volume) == ("SPY", "C", 500.0, 1200)


def test_missing_greeks_come_from_black_scholes_at_schwabs_iv():
    row = option_row(quote(delta=None, gamma=None))
    assert row.greeks_source == "model"
    assert 0.5 < row.delta < 0.75, "a call slightly in the money, an hour before expiry"
    assert row.gamma > 0


def test_expiry_is_the_new_york_close():
    assert expiry_ms("2026-11-24") == 1_795_554_000_000  # 2026-11-24 21:00 UTC (EST)


def test_of_an_indexs_two_roots_at_one_expiry_the_pm_settled_one_is_streamed():
    """A third Friday lists SPX's AM-settled monthly (settled from that morning's opening prints: not traded that
    day) and SPXW beside it: only SPXW is streamed. A day with only the AM-settled root keeps it."""
    listed = {"callExpDateMap": {"2026-12-18:0": {}}, "putExpDateMap": {}}
    for root, settlement in (("SPX", "A"), ("SPXW", "P")):
        for strike in (5990.0, 6000.0, 6010.0):
            listed["callExpDateMap"]["2026-12-18:0"].setdefault(f"{strike:.1f}", []).append(
                {"symbol": build(root, date(2026, 12, 18), "C", strike), "strikePrice": strike,
                 "settlementType": settlement})
    body = {"symbol": "$SPX", "status": "SUCCESS", "underlyingPrice": 6000.0, **listed}
    _, symbols = select_contracts(decode_chain(msgspec.json.encode(body)), band=0.01, today=date(2026, 12, 18))
    assert symbols == [build("SPXW", date(2026, 12, 18), "C", strike) for strike in (5990.0, 6000.0, 6010.0)]
    for strikes in listed["callExpDateMap"]["2026-12-18:0"].values():
        strikes[:] = [c for c in strikes if c["settlementType"] == "A"]
    _, symbols = select_contracts(decode_chain(msgspec.json.encode(body)), band=0.01, today=date(2026, 12, 18))
    assert symbols == [build("SPX", date(2026, 12, 18), "C", strike) for strike in (5990.0, 6000.0, 6010.0)]
