"""The status page: one self-contained HTML file (no CDN, no internet).

It polls /healthz for the actors' table and /api/series for the tick chart,
each once a second after the previous answer (never two in flight), and
draws price, SMA9 and VWAP as SVG polylines. Below it, the stored one-minute
bars of a range a person chooses (15 minutes, an hour, the session;
`?range=`), from /api/bars every few seconds, as candles with SMA9 and VWAP
over them; a bar not from the stream (repaired or backfilled from price
history) is drawn hollow and dashed. The legend's elements carry the raw
values (`data-value`, `data-ms`, `data-day-volume`), each candle its bar
(`data-ms`, `data-open` … `data-source`) and each SVG how many points or
bars it drew, for a reader that is not a person.
"""

from __future__ import annotations

import json

_PAGE = """<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>__TITLE__</title>
<style>
  body { font: 14px/1.4 system-ui, sans-serif; margin: 1.5em; color: #222; }
  h1 { font-size: 1.2em; margin: 0 0 .6em; }
  table { border-collapse: collapse; margin-bottom: 1.2em; }
  th, td { padding: .25em .7em; text-align: right; border-bottom: 1px solid #ddd; }
  th:first-child, td:first-child, td.status { text-align: left; }
  .running { color: #17702b; } .bad { color: #b3261e; font-weight: bold; }
  #legend span.v { font-variant-numeric: tabular-nums; margin-right: 1.2em; }
  .price { color: #1f5fbf; } .sma9 { color: #d9822b; } .vwap { color: #7a3fb0; }
  svg { width: 100%; max-width: 960px; height: 320px; border: 1px solid #ccc; }
  svg text { font-size: 11px; fill: #555; }
  #error { color: #b3261e; }
  #source[data-source="simulator"], #source[data-source="replay"] { background: #b3261e; color: #fff; padding: 0 .4em; }
  .up { color: #17702b; } .down { color: #b3261e; }
  .candle.repaired rect { fill: #fff; stroke-dasharray: 3 2; }
  .repaired-key { border: 1px dashed #555; padding: 0 .3em; }
</style>
</head>
<body>
<h1>streaming-service <span id="source" data-source="__SOURCE__">__SOURCE_TEXT__</span> <span id="overall"></span>
  <span id="realtime"></span></h1>
<table id="actors">
  <thead><tr><th>actor</th><th>status</th><th>in/s</th><th>out/s</th><th>batch ms</th><th>errors</th>
  <th>gaps</th><th>reconnects</th><th>journal MB</th><th>memory MB</th><th>age s</th></tr></thead>
  <tbody></tbody>
</table>
<p>
  <label>ticker <select id="ticker"></select></label>
  <span id="legend">
    <span class="price">price</span> <span id="price" class="v price">&mdash;</span>
    <span class="sma9">SMA9</span> <span id="sma9" class="v sma9">&mdash;</span>
    <span class="vwap">VWAP</span> <span id="vwap" class="v vwap">&mdash;</span>
    at <span id="ts" class="v">&mdash;</span>
  </span>
  <span id="error"></span>
</p>
<svg id="chart" viewBox="0 0 960 320" preserveAspectRatio="none" data-points="0">
  <polyline id="line-price" class="price" fill="none" stroke="currentColor" stroke-width="1.5"/>
  <polyline id="line-sma9" class="sma9" fill="none" stroke="currentColor" stroke-width="1.5"/>
  <polyline id="line-vwap" class="vwap" fill="none" stroke="currentColor" stroke-width="1.5"/>
  <text id="y-max" x="4" y="14"></text><text id="y-min" x="4" y="314"></text>
  <text id="x-first" x="70" y="314"></text><text id="x-last" x="956" y="314" text-anchor="end"></text>
</svg>
<p>
  <label>bars <select id="range">
    <option value="15m">15 minutes</option><option value="1h">1 hour</option><option value="session">session</option>
  </select></label>
  <span class="sma9">SMA9</span> <span class="vwap">VWAP</span> <span class="repaired-key">repaired</span>
  <span id="bars-span" class="v"></span>
</p>
<svg id="candles" viewBox="0 0 960 320" preserveAspectRatio="none" data-bars="0">
  <g id="candle-bodies"></g>
  <polyline id="bar-sma9" class="sma9" fill="none" stroke="currentColor" stroke-width="1.5"/>
  <polyline id="bar-vwap" class="vwap" fill="none" stroke="currentColor" stroke-width="1.5"/>
  <text id="c-y-max" x="4" y="14"></text><text id="c-y-min" x="4" y="314"></text>
</svg>
<script>
"use strict";
const TICKERS = __TICKERS__;
const RANGES = ["15m", "1h", "session"], BARS_EVERY_MS = 5000, SVG = "http://www.w3.org/2000/svg";
const W = 960, H = 320, PAD = 18, LIMIT = 300, EVERY_MS = 1000;
const $ = (id) => document.getElementById(id);
const params = new URLSearchParams(location.search);
let ticker = TICKERS.includes(params.get("ticker")) ? params.get("ticker") : TICKERS[0];
let range = RANGES.includes(params.get("range")) ? params.get("range") : "15m";

const remember = () => history.replaceState(null, "", "?ticker=" + encodeURIComponent(ticker) + "&range=" + range);
for (const t of TICKERS) $("ticker").add(new Option(t, t, false, t === ticker));
$("ticker").onchange = (e) => { ticker = e.target.value; remember(); bars().catch(() => {}); };
$("range").value = range;
$("range").onchange = (e) => { range = e.target.value; remember(); bars().catch(() => {}); };

const fixed = (v, digits) => v === null || v === undefined ? "\\u2014" : v.toFixed(digits);

function showValue(id, v) {
  $(id).textContent = fixed(v, 2);
  $(id).dataset.value = v === null ? "" : String(v);
}

function draw(points) {
  const values = points.flatMap((p) => [p[2], p[3], p[4]]).filter((v) => v !== null);
  let lo = Math.min(...values), hi = Math.max(...values);
  if (hi - lo < 0.01) { lo -= 0.005; hi += 0.005; }
  const t0 = points[0][0], t1 = Math.max(points[points.length - 1][0], t0 + 1);
  const x = (t) => (PAD + (t - t0) / (t1 - t0) * (W - 2 * PAD)).toFixed(1);
  const y = (v) => (H - PAD - (v - lo) / (hi - lo) * (H - 2 * PAD)).toFixed(1);
  [["line-price", 2], ["line-sma9", 3], ["line-vwap", 4]].forEach(([id, k]) => {
    $(id).setAttribute("points", points.filter((p) => p[k] !== null).map((p) => x(p[0]) + "," + y(p[k])).join(" "));
  });
  $("y-max").textContent = hi.toFixed(2);
  $("y-min").textContent = lo.toFixed(2);
  $("x-first").textContent = new Date(t0).toISOString().slice(11, 19);
  $("x-last").textContent = new Date(points[points.length - 1][0]).toISOString().slice(11, 19);
}

async function series() {
  const asked = ticker;
  const answer = await fetch("/api/series?ticker=" + encodeURIComponent(asked) + "&limit=" + LIMIT);
  const body = await answer.json();
  if (!answer.ok) throw new Error(body.error || answer.statusText);
  if (asked !== ticker) return;
  const points = body.points, chart = $("chart");
  if (points.length) {
    draw(points);
    const last = points[points.length - 1];
    showValue("price", last[2]); showValue("sma9", last[3]); showValue("vwap", last[4]);
    $("ts").textContent = new Date(last[0]).toISOString().replace("T", " ");
    $("ts").dataset.ms = last[0];
    $("ts").dataset.dayVolume = last[1];
  }
  chart.dataset.points = points.length;
  chart.dataset.ticker = asked;
}

function drawBars(rows) {
  const values = rows.flatMap((b) => [b[2], b[3], b[7], b[8]]).filter((v) => v !== null);
  let lo = Math.min(...values), hi = Math.max(...values);
  if (hi - lo < 0.01) { lo -= 0.005; hi += 0.005; }
  const step = (W - 2 * PAD) / rows.length, body = Math.max(step * 0.7, 1);
  const x = (i) => PAD + (i + 0.5) * step;
  const y = (v) => H - PAD - (v - lo) / (hi - lo) * (H - 2 * PAD);
  const candles = rows.map((b, i) => {
    const [ms, open, high, low, close, volume, source] = b;
    const g = document.createElementNS(SVG, "g");
    g.setAttribute("class", "candle " + (close >= open ? "up" : "down") + (source === "stream" ? "" : " repaired"));
    Object.assign(g.dataset, {ms, open, high, low, close, volume, source});
    const wick = document.createElementNS(SVG, "line");
    [["x1", x(i)], ["x2", x(i)], ["y1", y(high)], ["y2", y(low)]]
      .forEach(([k, v]) => wick.setAttribute(k, v.toFixed(1)));
    wick.setAttribute("stroke", "currentColor");
    const rect = document.createElementNS(SVG, "rect");
    const top = y(Math.max(open, close)), height = Math.max(Math.abs(y(open) - y(close)), 1);
    [["x", x(i) - body / 2], ["y", top], ["width", body], ["height", height]]
      .forEach(([k, v]) => rect.setAttribute(k, v.toFixed(1)));
    rect.setAttribute("fill", "currentColor");
    rect.setAttribute("stroke", "currentColor");
    g.append(wick, rect);
    return g;
  });
  $("candle-bodies").replaceChildren(...candles);
  [["bar-sma9", 7], ["bar-vwap", 8]].forEach(([id, k]) => {
    $(id).setAttribute("points", rows.map((b, i) => b[k] === null ? null : x(i).toFixed(1) + "," + y(b[k]).toFixed(1))
      .filter(Boolean).join(" "));
  });
  $("c-y-max").textContent = hi.toFixed(2);
  $("c-y-min").textContent = lo.toFixed(2);
}

async function bars() {
  const asked = ticker, span = range;
  const answer = await fetch("/api/bars?ticker=" + encodeURIComponent(asked) + "&range=" + span);
  const body = await answer.json();
  if (!answer.ok) throw new Error(body.error || answer.statusText);
  if (asked !== ticker || span !== range) return;
  const rows = body.bars, chart = $("candles");
  if (rows.length) drawBars(rows); else $("candle-bodies").replaceChildren();
  $("bars-span").textContent = rows.length ? rows.length + " bars, " + new Date(rows[0][0]).toISOString().slice(11, 16)
    + "\\u2013" + new Date(rows[rows.length - 1][0]).toISOString().slice(11, 16) + " UTC" : "no bars yet";
  Object.assign(chart.dataset, {bars: rows.length, ticker: asked, range: span});
}

async function actors() {
  const answer = await fetch("/healthz");
  const body = await answer.json();
  $("overall").textContent = "\\u2014 " + body.status;
  $("overall").className = body.status === "ok" ? "running" : "bad";
  const late = body.realtime.delayed;
  $("realtime").textContent = late.length ? "DELAYED by Schwab: " + late.join(", ") : "real-time";
  $("realtime").className = late.length ? "bad" : "running";
  $("realtime").title = body.realtime.entitlement ? "LOGIN status " + body.realtime.entitlement : "";
  const rows = Object.entries(body.actors).map(([name, a]) => {
    const tr = document.createElement("tr");
    tr.dataset.actor = name;
    const mb = (b) => b ? (b / 1048576).toFixed(1) : "\\u2014";
    const cells = [name, a.status, fixed(a.records_in_per_s, 1), fixed(a.records_out_per_s, 1),
      a.batch_latency_s == null ? "\\u2014" : (a.batch_latency_s * 1000).toFixed(2), a.errors ?? "\\u2014",
      a.gaps ?? "\\u2014", a.reconnects ?? "\\u2014", mb(a.journal_bytes), mb(a.rss_bytes),
      fixed(a.last_sample_age_s, 1)];
    cells.forEach((text, i) => {
      const td = tr.insertCell();
      td.textContent = text;
      if (i === 1) td.className = "status " + (a.status === "running" ? "running" : "bad");
    });
    return tr;
  });
  document.querySelector("#actors tbody").replaceChildren(...rows);
}

async function poll(what, errors, every) {
  try {
    await what();
    errors.delete(what.name);
  } catch (error) {
    errors.set(what.name, what.name + ": " + error.message);
  }
  $("error").textContent = [...errors.values()].join("; ");
  setTimeout(() => poll(what, errors, every), every);
}

const errors = new Map();
poll(actors, errors, EVERY_MS);
poll(series, errors, EVERY_MS);
poll(bars, errors, BARS_EVERY_MS);
</script>
</body>
</html>
"""


#: What the header says of the data: simulated data is never mistaken for Schwab's.
SOURCE_TEXT = {"simulator": "SIMULATED DATA (the Schwab simulator, not Schwab)", "schwab": "Schwab",
               "replay": "REPLAYED DATA (a recording, not live)"}


def render(tickers: tuple[str, ...], source: str) -> bytes:
    """The page, knowing the configured tickers (the first is shown unless `?ticker=` says otherwise)
    and whose data it shows."""
    listed = json.dumps(list(tickers)).replace("<", "\\u003c")  # never "</script>" inside the script
    title = {"simulator": "streaming-service (SIMULATED)", "replay": "streaming-service (REPLAY)"}.get(
        source, "streaming-service")
    return (_PAGE.replace("__TICKERS__", listed).replace("__SOURCE_TEXT__", SOURCE_TEXT[source])
            .replace("__SOURCE__", source).replace("__TITLE__", title).encode())
