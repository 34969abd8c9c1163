"""/metrics, /healthz and the status page of a real pipeline; the page as headless Chromium draws it."""

import json
import urllib.error
import urllib.request
from decimal import Decimal

import pytest
from prometheus_client.parser import text_string_to_metric_families

from common.config import ACTORS
from tests.helpers import chromium
from tests.helpers.harness import ACTOR_PROGRAMS, Pipeline, free_port, wait_for

pytestmark = pytest.mark.e2e
TICKERS = ("SPY", "QQQ")
DASH = "\u2014"

#: What the page shows, read the way a person reads it (text) and exactly (data attributes).
READ_PAGE = """(() => {
  const $ = (id) => document.getElementById(id);
  const shown = (id) => ({text: $(id).textContent, value: $(id).dataset.value ?? null});
  return {
    points: Number($("chart").dataset.points), ticker: $("chart").dataset.ticker ?? null,
    drawn: ($("line-price").getAttribute("points") || "").split(" ").filter(Boolean).length,
    price: shown("price"), sma9: shown("sma9"), vwap: shown("vwap"),
    ms: Number($("ts").dataset.ms ?? 0), dayVolume: Number($("ts").dataset.dayVolume ?? 0),
    error: $("error").textContent, title: document.title,
    source: {text: $("source").textContent, value: $("source").dataset.source},
    actors: Object.fromEntries([...document.querySelectorAll("#actors tbody tr")]
      .map((tr) => [tr.dataset.actor, tr.cells[1].textContent])),
  };
})()"""


@pytest.fixture(scope="module")
def browser_binary() -> str:
    """Set-up: Chromium from the OS packages, before any pipeline starts."""
    try:
        return chromium.ensure_installed()
    except RuntimeError as error:
        pytest.fail(str(error), pytrace=False)


@pytest.fixture(scope="module")
def pipeline():
    # One-second bars: SMA9 (eight closed bars and the live price) has values within seconds.
    running = Pipeline(tickers=",".join(TICKERS), METRICS_HTTP_PORT=str(free_port()), SIM_BAR_SECONDS="1").start()
    try:
        yield running
    finally:
        running.shutdown()


def url(pipeline: Pipeline, path: str) -> str:
    return f"http://127.0.0.1:{pipeline.env['METRICS_HTTP_PORT']}{path}"


def get(pipeline: Pipeline, path: str) -> tuple[int, bytes]:
    try:
        with urllib.request.urlopen(url(pipeline, path), timeout=10) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as error:
        return error.code, error.read()
    except OSError:  # not listening yet
        return 0, b""


def diagnostics(pipeline: Pipeline) -> str:
    return "\n".join(f"--- {p}.log\n{pipeline.log(p)[-2000:]}" for p in ACTOR_PROGRAMS)


def health_if_ok(pipeline: Pipeline) -> dict | None:
    status, body = get(pipeline, "/healthz")
    return json.loads(body) if status == 200 else None


def healthy(pipeline: Pipeline) -> dict:
    try:
        return wait_for(lambda: health_if_ok(pipeline), 60, "/healthz to say ok")
    except AssertionError as error:
        raise AssertionError(f"{error}: {get(pipeline, '/healthz')}\n{diagnostics(pipeline)}") from None


def scrape(pipeline: Pipeline) -> dict[tuple[str, tuple], float]:
    status, body = get(pipeline, "/metrics")
    assert status == 200, body
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for family in text_string_to_metric_families(body.decode()) for s in family.samples}


def records(scraped: dict, actor: str, direction: str = "in") -> float:
    return scraped["streaming_records_total", (("actor", actor), ("direction", direction))]


def test_metrics_and_health_cover_every_actor(pipeline):
    body = healthy(pipeline)
    assert {name: entry["status"] for name, entry in body["actors"].items()} == dict.fromkeys(ACTORS, "running")
    assert body["source"] == "simulator"
    assert all(entry["rss_bytes"] > 10_000_000 for entry in body["actors"].values()), body
    first = scrape(pipeline)
    assert first["streaming_source_info", (("source", "simulator"),)] == 1
    for actor in ACTORS:
        one = (("actor", actor),)
        assert first["streaming_actor_up", one] == 1, actor
        assert first["streaming_last_sample_age_seconds", one] < 5, actor
        assert first["streaming_resident_memory_bytes", one] > 10_000_000, actor
        assert ("streaming_errors_total", one) in first and ("streaming_processing_seconds_total", one) in first
    wait_for(lambda: any(name == "streaming_stream_lag_records" for name, _ in scrape(pipeline)), 15,
             "stream lag series")
    wait_for(lambda: counted_up(first, scrape(pipeline)), 15, "every actor's records counting up")


def counted_up(first: dict, second: dict) -> bool:
    return all(records(second, actor) > records(first, actor) for actor in ACTORS) and \
        records(second, "writer", "out") > records(first, "writer", "out")


def read_page(browser: chromium.Browser) -> dict:
    return browser.evaluate(READ_PAGE)


def drawn(browser: chromium.Browser) -> dict | None:
    """What the page shows, once the chart has points (SMA9's too) and the actors' table is filled."""
    page = read_page(browser)
    return page if page["points"] > 0 and page["sma9"]["text"] != DASH and len(page["actors"]) == len(ACTORS) else None


def near(text: str, stored: Decimal | None) -> bool:
    """`text` is `stored` to the two decimals shown (a NULL shows as a dash)."""
    return text == DASH if stored is None else abs(float(text) - float(stored)) <= 0.005 + 1e-9


def test_status_page_draws_the_chart_and_shows_what_the_database_holds(pipeline, browser_binary):
    healthy(pipeline)
    with chromium.Browser(browser_binary) as browser:
        browser.open(url(pipeline, "/?ticker=QQQ"))
        try:
            page = wait_for(lambda: drawn(browser), 30, "the chart to draw", interval=0.25)
        except AssertionError as error:
            raise AssertionError(f"{error}: {read_page(browser)}\n{diagnostics(pipeline)}") from None

        assert page["ticker"] == "QQQ" and page["drawn"] == page["points"], page
        assert page["actors"] == dict.fromkeys(ACTORS, "running"), page
        assert page["error"] == "", page
        assert page["source"] == {"text": "SIMULATED DATA (the Schwab simulator, not Schwab)", "value": "simulator"}
        assert "SIMULATED" in page["title"], page
        (stored,) = pipeline.query(
            "SELECT e.price, i.sma9, i.vwap FROM equity_data e JOIN indicators i USING (ticker, timestamp, day_volume)"
            " WHERE ticker = 'QQQ' AND (extract(epoch FROM timestamp) * 1000)::bigint = %s AND day_volume = %s",
            (page["ms"], page["dayVolume"]))
        for name, value in zip(("price", "sma9", "vwap"), stored, strict=True):
            assert near(page[name]["text"], value), (name, page[name], value)
            exact = float(page[name]["value"]) if page[name]["value"] else None
            assert exact == (None if value is None else float(value)), (name, page[name], value)
        ((latest_ms,),) = pipeline.query("SELECT (extract(epoch FROM max(timestamp)) * 1000)::bigint FROM indicators"
                                         " WHERE ticker = 'QQQ'")
        assert latest_ms - page["ms"] < 5000, "the values shown are the latest"

        wait_for(lambda: read_page(browser)["ms"] > page["ms"], 10, "the chart to move on without a reload")


#: Every candle the page drew, as its data attributes say, and the range it drew.
READ_CANDLES = """(() => {
  const chart = document.getElementById("candles");
  return {
    bars: Number(chart.dataset.bars), range: chart.dataset.range ?? null, ticker: chart.dataset.ticker ?? null,
    sma9: (document.getElementById("bar-sma9").getAttribute("points") || "").split(" ").filter(Boolean).length,
    candles: [...document.querySelectorAll("#candle-bodies g.candle")].map((g) => ({
      ms: Number(g.dataset.ms), open: Number(g.dataset.open), high: Number(g.dataset.high),
      low: Number(g.dataset.low), close: Number(g.dataset.close), source: g.dataset.source,
      repaired: g.classList.contains("repaired")})),
  };
})()"""


def test_the_bar_chart_draws_the_stored_bars_of_the_chosen_range(pipeline, browser_binary):
    healthy(pipeline)
    wait_for(lambda: pipeline.count("equity_bars") >= 20, 30, "bars stored")
    # A bar from price history, a second before the stream's first: drawn, and marked as not the stream's.
    pipeline.query("INSERT INTO equity_bars (ticker, timestamp, open, high, low, close, volume, source)"
                   " SELECT 'SPY', min(timestamp) - interval '1 second', 100, 101, 99, 100.5, 10, 'repaired'"
                   " FROM equity_bars WHERE ticker = 'SPY' RETURNING 1")
    with chromium.Browser(browser_binary) as browser:
        browser.open(url(pipeline, "/?ticker=SPY&range=1h"))
        drawn_bars = wait_for(lambda: (c := browser.evaluate(READ_CANDLES))["bars"] >= 8 and c, 30,
                              "the candles to draw", interval=0.25)
        assert (drawn_bars["ticker"], drawn_bars["range"]) == ("SPY", "1h")
        assert len(drawn_bars["candles"]) == drawn_bars["bars"] and drawn_bars["sma9"] > 0, drawn_bars
        stored = {ms: (float(o), float(h), float(low), float(c), source) for ms, o, h, low, c, source in pipeline.query(
            "SELECT (extract(epoch FROM timestamp) * 1000)::bigint, open, high, low, close, source FROM equity_bars"
            " WHERE ticker = 'SPY'")}
        for candle in drawn_bars["candles"]:
            assert stored[candle["ms"]] == (candle["open"], candle["high"], candle["low"], candle["close"],
                                            candle["source"]), candle
            assert candle["repaired"] == (candle["source"] == "repaired"), candle
        starts = sorted(stored)
        shown = [candle["ms"] for candle in drawn_bars["candles"]]
        assert shown == starts[starts.index(shown[0]):starts.index(shown[0]) + len(shown)], "consecutive, oldest first"
        assert shown[0] == starts[0], "an hour reaches back past the first bar of this run"
        assert [candle["repaired"] for candle in drawn_bars["candles"][:2]] == [True, False]

        browser.evaluate('(() => { const r = document.getElementById("range"); r.value = "15m";'
                         ' r.dispatchEvent(new Event("change")); })()')
        wait_for(lambda: browser.evaluate(READ_CANDLES)["range"] == "15m", 10, "the chosen range to draw")
        assert browser.evaluate("location.search") == "?ticker=SPY&range=15m"
