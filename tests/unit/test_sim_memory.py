"""The simulator runs for days: what it keeps per trade, token and contract stays bounded (no sockets)."""

from __future__ import annotations

import gc
import json
import tracemalloc
from datetime import date
from pathlib import Path

import pytest

from common.feed import option_symbols
from common.simulator import trade_log
from common.simulator.market import Market, expirations, new_york_date
from common.simulator.protocol import LEVELONE_EQUITIES, SentTrade
from common.simulator.report import Report
from common.simulator.tokens import REVOKED, Tokens

TRADES = 50_000
BATCH = 50
SYMBOLS = ("SPY", "QQQ", "AAPL")
T0 = 1_760_000_000_000  # a Thursday, 2025-10-09, 04:53 New York time
DAY_MS = 86_400_000


def trade(i: int) -> SentTrade:
    """The i-th trade, rebuilt on demand so the test itself keeps none of them."""
    return SentTrade(SYMBOLS[i % 3], T0 + i, round(580 + (i % 1000) / 100, 2), 1_000_000 + i * 100, 100)


def retained_after_sending_all(report: Report) -> int:
    """Bytes still allocated after every trade went through `report.sent` in frames of BATCH, as the server sends."""
    report.sent(LEVELONE_EQUITIES, [{}], [trade(-1)], connection_of(-1))  # first use: dict slots, the log's buffer
    tracemalloc.start()
    try:
        gc.collect()
        before = tracemalloc.get_traced_memory()[0]
        for start in range(0, TRADES, BATCH):
            trades = [trade(i) for i in range(start, start + BATCH)]
            report.sent(LEVELONE_EQUITIES, [{}] * (BATCH + 5), trades, connection_of(start))
        gc.collect()
        return tracemalloc.get_traced_memory()[0] - before
    finally:
        tracemalloc.stop()


def connection_of(i: int) -> int:
    """The i-th trade's connection: a reconnect halfway through."""
    return 1 + max(i, 0) // (TRADES // 2)


@pytest.mark.parametrize("logged", [False, True], ids=["counts-only", "trade-log"])
def test_50000_trades_leave_memory_flat_and_the_log_exact(tmp_path: Path, logged: bool):
    path = tmp_path / "trades.jsonl"
    report = Report(seed=1, trade_log=path if logged else None)
    retained = retained_after_sending_all(report)
    assert retained < 256 * 1024, f"{retained} bytes kept for {TRADES} trades"  # the old report kept 14 MB

    body = report.to_json()
    assert "trades" not in body
    assert body["counts"]["trades"] == TRADES + 1 and body["counts"]["quotes"] == TRADES // BATCH * 5
    assert body["trade_log"] == (str(path) if logged else None)
    if not logged:
        assert not path.exists()
        return
    expected: dict[str, list[dict]] = {symbol: [] for symbol in SYMBOLS}
    for i in range(-1, TRADES):
        t = trade(i)
        expected[t.symbol].append({"symbol": t.symbol, "trade_time_ms": t.trade_time_ms, "price": t.price,
                                   "day_volume": t.day_volume, "size": t.size, "connection": connection_of(i)})
    assert trade_log.read(path) == expected, "what the report answered is all in the file, before any close"
    report.close()
    assert trade_log.read(path) == expected


def test_the_log_is_json_lines_and_a_half_written_line_is_not_read(tmp_path: Path):
    path = tmp_path / "trades.jsonl"
    log = trade_log.TradeLog(path)
    log.append([trade(0), trade(1)], connection=3)
    assert path.read_bytes() == b"", "buffered until flushed"
    log.flush()
    lines = path.read_text().splitlines()
    assert [json.loads(line) for line in lines][1] == {"symbol": "QQQ", "trade_time_ms": T0 + 1, "price": 580.01,
                                                      "day_volume": 1_000_100, "size": 100, "connection": 3}
    with path.open("ab") as f:
        f.write(b'{"symbol":"AAPL","trade_ti')  # a writer caught mid-line
    assert sum(map(len, trade_log.read(path).values())) == 2
    log.close()


def test_tokens_remember_a_bounded_number_and_still_refuse_what_was_revoked():
    tokens = Tokens(kept=100)
    issued = [tokens.issue(refresh_token="SIM.refresh.kept")["access_token"] for _ in range(1000)]
    codes = [tokens.issue_code() for _ in range(1000)]
    assert len(tokens.issued_access) == len(tokens.codes) == 100
    assert tokens.redeem_code(codes[-1]) and not tokens.redeem_code(codes[-1])
    assert tokens.access_ok(issued[-1]) and tokens.refresh_refusal("SIM.refresh.kept") is None
    tokens.revoke_refresh()
    assert len(tokens.revoked) == 100
    assert not tokens.access_ok(issued[-1]) and tokens.refresh_refusal("SIM.refresh.kept") == REVOKED


def list_contracts(market: Market, now_ms: int) -> list[str]:
    """Three strikes a side of every expiration listed at `now_ms`, as a chain request creates them."""
    listed = [option_symbols.build("SPY", expiration, put_call, strike)
              for expiration in expirations(new_york_date(now_ms)) for strike in (579.0, 580.0, 581.0)
              for put_call in ("C", "P")]
    for symbol in listed:
        market.option_quote(symbol, now_ms)
    return listed


def test_expired_contracts_are_forgotten_and_the_rest_unchanged():
    market = Market(5)
    streamed = option_symbols.build("SPY", date(2025, 10, 9), "C", 580.0)
    market.option_quote(streamed, T0)
    far = list_contracts(market, T0)[-1]  # three Fridays out: listed throughout
    forgotten = 0
    for day in range(1, 15):  # two weeks of daily chains: a new expiration listed each weekday
        now = T0 + day * DAY_MS
        listed = list_contracts(market, now)
        before = market.option_quote(far, now)
        forgotten += market.forget_expired_options(now, {streamed})
        assert market.option_quote(far, now) == before, "a contract still listed keeps its state"
    assert forgotten >= 8 * 6, "the expirations of eight weekdays or more"
    assert set(market._options) == {*listed, streamed}, "what a chain lists today, and the expired one streamed"
