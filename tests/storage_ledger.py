"""`python -m tests.storage_ledger`: what a trading day costs the database, table by table, and the days 500 MB keeps.

A measurement, not a test. On a throwaway PostgreSQL with every migration,
one trading day of each configuration is written through the writer's own
write path (`db.write_batches`) at Schwab's throttled maximum: one level-one
update per symbol and contract per second over the 6.5-hour session, so a
trade (and its indicator value) every second per ticker, a minute bar per
ticker and minute, an option snapshot per contract and OPTION_STORE_INTERVAL
(a minute), and the service's own metrics round the clock at METRICS_INTERVAL
(five actors, six stored streams). Each table's partition of that day is
then measured (table, indexes, TOAST), and the rollups table as a whole.

Prints one JSON object: per configuration, per table rows and MB a day and
bytes a row; the MB a day in all; and the trading days of every table the
budget keeps in Postgres besides today, at the least (right after the keeper
ran: its high-water mark less a day's growth, less what is not daily data,
the metrics of their retention and a full today, over a day's MB).
"""

from __future__ import annotations

import json
import shutil
import sys
import tempfile
from datetime import date, datetime
from pathlib import Path

import msgspec
import psycopg

from common.config import SETTINGS, parse_duration
from common.feed.market_hours import NEW_YORK
from common.store import budget, db, migrate
from common.store.localpg import SUPERUSER, LocalPostgres
from common.transport.messages import EquityTrade, IndicatorValue, MinuteBar, OptionRow, StreamingMetric, StreamLag

DAY = date(2026, 11, 18)
SESSION_S, MINUTES = 23_400, 390
DEFAULTS = {setting.name: setting.default for setting in SETTINGS}
METRICS_EVERY_S = parse_duration("METRICS_INTERVAL", DEFAULTS["METRICS_INTERVAL"])
METRICS_DAYS = int(DEFAULTS["METRICS_RETENTION_DAYS"])
BUDGET_MB = int(DEFAULTS["STORAGE_BUDGET_MB"])
#: (name, tickers, option contracts per ticker): SPY with its ±2 % 0DTE band, and 50 tickers with theirs.
CONFIGURATIONS = (("default: SPY, ±2 % band, 0DTE", 1, 46), ("50 tickers with their bands", 50, 30))
STREAMS = ("ingest/trade", "ingest/bar", "ingest/option", "indicator/indicator", "metrics/streaming_metric",
           "metrics/stream_lag")
ACTORS = ("ingest", "indicator", "options", "writer", "metrics")


def day_rows(tickers: int, contracts: int, day: date = DAY) -> dict[str, list]:
    """One trading day of every stored table, as the writer would store it."""
    open_ms = int(datetime(day.year, day.month, day.day, 9, 30, tzinfo=NEW_YORK).timestamp() * 1000)
    symbols = [f"T{n:03d}" for n in range(tickers)] if tickers > 1 else ["SPY"]
    rows: dict[str, list] = {"equity_data": [], "indicators": [], "equity_bars": [], "option_prices": [],
                             "streaming_metrics": [], "stream_metrics": []}
    for n, symbol in enumerate(symbols):
        price = 600.0 if symbol == "SPY" else 50.0 + 7 * n
        for second in range(SESSION_S):
            ms = open_ms + 1000 * second + (second * 37 + n) % 1000
            price = round(price + ((second * 7919 + n) % 7 - 3) * 0.01, 2)
            volume = 100 * (second + 1) + n
            rows["equity_data"].append(EquityTrade(symbol, ms, price, 100, volume, 100, price - 0.01, price + 0.01,
                                                   ms * 1_000_000 + 20_000_000))
            rows["indicators"].append(IndicatorValue(symbol, ms, volume, price, round(price - 0.013, 6),
                                                     round(price + 0.021, 6), ms * 1_000_000 + 20_000_000))
        for minute in range(MINUTES):
            start = open_ms + 60_000 * minute
            rows["equity_bars"].append(MinuteBar(symbol, start, price, price + 0.05, price - 0.05, price + 0.01,
                                                 6_000.0 + minute, minute, start * 1_000_000 + 60_500_000_000))
            for contract in range(contracts):
                strike = round(price * 0.98) + contract // 2  # one-dollar strikes, a call and a put each
                kind = "C" if contract % 2 else "P"
                mid = round(1.0 + (contract % 9) * 0.37 + minute * 0.001, 2)
                rows["option_prices"].append(OptionRow(
                    symbol, f"{symbol:<6}{day:%y%m%d}{kind}{strike * 1000:08d}", start, kind, float(strike),
                    day.isoformat(), mid, mid - 0.01, mid + 0.01, mid, minute * 13 + contract, 1_000 + contract,
                    0.51234567, 0.01234567, -0.31234567, 0.11234567, 0.01234567, 0.18234567, price, "schwab",
                    start * 1_000_000 + 59_000_000_000))
    midnight_ns = int(datetime(day.year, day.month, day.day, tzinfo=NEW_YORK).timestamp()) * 10**9
    for tick in range(int(86_400 / METRICS_EVERY_S)):
        ts_ns = midnight_ns + int(tick * METRICS_EVERY_S * 1e9)
        for actor in ACTORS:
            rows["streaming_metrics"].append(StreamingMetric(ts_ns, actor, None, 1_234, 12, 3, 0, 0, "running",
                                                             source="schwab", deployment="lightsail-1"))
        for stream in STREAMS:
            rows["stream_metrics"].append(StreamLag(ts_ns, f"lightsail-1/{stream}", 1_765_000_000_000_000_000,
                                                    tick * 60, tick * 60, 0, 0.0))
    return {table: list(map(msgspec.structs.astuple, table_rows)) for table, table_rows in rows.items()}


def measure(url: str, tickers: int, contracts: int) -> dict:
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("SELECT create_partitions(%s, %s)", (DAY, DAY))
    writer = db.connect(url, statement_timeout_ms=0)
    rows = day_rows(tickers, contracts)
    for table, table_rows in rows.items():
        for start in range(0, len(table_rows), 5_000):
            db.write_batches(writer, {table: table_rows[start:start + 5_000]})
    writer.close()
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("VACUUM ANALYZE")
        sizes = {table: size for table, day, size in conn.execute("SELECT * FROM stored_days()").fetchall()
                 if day == DAY}
        sizes["equity_bar_rollups"] = conn.execute("SELECT pg_total_relation_size('equity_bar_rollups')").fetchone()[0]
        counts = {table: conn.execute(f"SELECT count(*) FROM {table}").fetchone()[0] for table in sizes}
        database = budget.database_size(conn)
    tables = {table: {"rows_per_day": counts[table], "mb_per_day": round(sizes[table] / budget.MB, 2),
                      "bytes_per_row": round(sizes[table] / counts[table]) if counts[table] else None}
              for table in sizes}
    market = sum(sizes[table] for table in sizes if table not in budget.METRICS)
    metrics = sum(sizes[table] for table in budget.METRICS)
    # Not daily data: the catalog, the migrations' own rows, and the empty partitions made a week ahead.
    base = database - sum(sizes.values())
    # Right after the keeper ran (the fewest days it ever holds): the high-water mark less a day's growth, less
    # what is not daily data, the metrics of their retention, and today's partition, full.
    room = budget.HIGH_WATER * BUDGET_MB * budget.MB - (market + metrics) - base - METRICS_DAYS * metrics - market
    return {"tables": tables, "mb_per_trading_day": round((market + metrics) / budget.MB, 1),
            "market_data_mb_per_day": round(market / budget.MB, 2), "metrics_mb_per_day": round(metrics / budget.MB, 2),
            "base_mb": round(base / budget.MB, 1),
            "past_trading_days_kept_at_least": round(max(room, 0) / market, 1)}


def main() -> int:
    base = Path(tempfile.mkdtemp(prefix="ledger", dir="/tmp"))
    cluster = LocalPostgres(base / "pg")
    cluster.init()
    cluster.start()
    report = {"day": DAY.isoformat(), "budget_mb": BUDGET_MB, "metrics_interval_s": METRICS_EVERY_S,
              "metrics_retention_days": METRICS_DAYS}
    try:
        for number, (name, tickers, contracts) in enumerate(CONFIGURATIONS):
            with psycopg.connect(cluster.url(SUPERUSER, "postgres"), autocommit=True) as admin:
                admin.execute(f"CREATE DATABASE ledger{number} OWNER postgres")
            url = cluster.url(dbname=f"ledger{number}")
            with migrate.connect(url) as conn:
                migrate.migrate(conn)
            report[name] = measure(url, tickers, contracts)
    finally:
        cluster.remove()
        shutil.rmtree(base, ignore_errors=True)
    sys.stdout.write(json.dumps(report, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
