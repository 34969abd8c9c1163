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
