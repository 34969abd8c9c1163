"""Hostile frames through the real client and the real pipeline: `POST /sim/inject` under supervisord.

A well-formed LEVELONE_EQUITIES frame carries one good item and one bad item
of each kind the edge refuses. The good item's trade is stored; each bad
one is counted under its reason in `streaming_metrics` and `/metrics`; ingest
keeps its process and its connection; the simulator's own trades keep
flowing and stay exactly once.
"""

from __future__ import annotations

import json
import time
from decimal import Decimal

import httpx
import pytest

from common.simulator import control
from tests.helpers.harness import Pipeline, free_port, wait_for

pytestmark = pytest.mark.e2e

#: A ticker the simulator does not stream: only the injected frames speak of it.
INJECTED = "ZZZT"
#: (reason the edge counts it under, the bad item).
BAD_ITEMS = (
    ("bad_type", {"key": "SPYX", "1": 10.0, "2": "abc", "3": 10.0}),  # an ask that is text
    ("bad_type", {"key": "QQQX", "8": True, "3": 10.0}),  # a boolean volume
    ("bad_type", {"key": 12345, "3": 10.0}),  # an integer key
    ("key_implausible", {"key": "A" * 5000, "3": 10.0}),
    ("price_out_of_range", {"key": "IWMX", "3": -5.0, "8": 100}),
    ("price_out_of_range", {"key": "DIAX", "3": 1e300, "8": 100}),
)


def frame(content: list[dict], now_ms: int) -> str:
    return json.dumps({"data": [{"service": "LEVELONE_EQUITIES", "timestamp": now_ms, "command": "SUBS",
                                 "content": content}]})


def inject(pipeline: Pipeline, text: str) -> None:
    response = httpx.post(f"{pipeline.env['SIMULATOR_URL']}/sim/inject", content=text.encode(),
                          headers=control.headers(pipeline.var / "run"), timeout=15)
    assert response.status_code == 200, response.text
    assert response.json() == {"sent_to": 1}


def rejected_reasons(pipeline: Pipeline) -> dict[str, int]:
    rows = pipeline.query("SELECT rejected_reasons FROM streaming_metrics WHERE actor = 'ingest'"
                          " AND rejected_reasons <> ''")
    counts: dict[str, int] = {}
    for (reasons,) in rows:
        for part in reasons.split(","):
            reason, count = part.split("=")
            counts[reason] = counts.get(reason, 0) + int(count)
    return counts


@pytest.fixture(scope="module")
def pipeline():
    running = Pipeline("SPY,QQQ", rate=60, METRICS_HTTP_PORT=str(free_port())).start()
    try:
        wait_for(lambda: running.count("equity_data") > 10, 60, "ticks flowing")
        yield running
    finally:
        running.shutdown()


def test_a_bad_item_costs_only_itself(pipeline: Pipeline):
    pid, report = pipeline.pid("ingest"), pipeline.report_live()["counts"]
    now_ms = int(time.time() * 1000)
    # The first snapshot of a key is state, not a trade; the second frame's volume growth is the trade.
    inject(pipeline, frame([{"key": INJECTED, "1": 9.99, "2": 10.01, "3": 10.0, "8": 1000, "35": now_ms}], now_ms))
    bad = [item for _, item in BAD_ITEMS]
    inject(pipeline, frame([*bad[:3], {"key": INJECTED, "3": 10.5, "8": 1100, "35": now_ms + 1}, *bad[3:]],
                           now_ms + 1))

    stored = wait_for(lambda: pipeline.query(
        "SELECT price, volume, day_volume FROM equity_data WHERE ticker = %s", (INJECTED,)), 30, "the good trade")
    assert [tuple(map(float, row)) for row in stored] == [(10.5, 100.0, 1100.0)]

    expected: dict[str, int] = {}
    for reason, _ in BAD_ITEMS:
        expected[reason] = expected.get(reason, 0) + 1
    wait_for(lambda: rejected_reasons(pipeline) == expected, 30, f"rejections {expected} in streaming_metrics")
    exposed = httpx.get(f"http://127.0.0.1:{pipeline.env['METRICS_HTTP_PORT']}/metrics", timeout=10).text
    for reason, count in expected.items():
        assert f'streaming_rejected_total{{actor="ingest",reason="{reason}"}} {count}.0' in exposed

    # No reconnect, no restart: the same process on the same connection, and the stream goes on.
    after = pipeline.report_live()["counts"]
    assert pipeline.pid("ingest") == pid
    assert (after["connections"], after["logins"]) == (report["connections"], report["logins"])
    assert after["injected"] == report["injected"] + 2
    stored_before = pipeline.count("equity_data")
    wait_for(lambda: pipeline.count("equity_data") > stored_before + 5, 30, "the simulator's trades still stored")

    log = pipeline.log("ingest")
    assert "A" * 40 in log and "A" * 201 not in log, "a rejected item is logged with an excerpt, not in full"


def test_the_simulators_trades_stay_exactly_once(pipeline: Pipeline):
    pipeline.stop_and_reopen()
    sent = {(symbol, trade["trade_time_ms"], trade["day_volume"], Decimal(str(trade["price"])))
            for symbol, trades in pipeline.sent_trades().items() for trade in trades}
    stored = [row for row in pipeline.stored_trades() if row[0] != INJECTED]
    assert len(stored) == len(set(stored))
    assert set(stored) == sent
