"""The writer's write path, and the SQL functions on what it stored."""

from __future__ import annotations

import re
import time
from datetime import datetime, timedelta
from decimal import Decimal

import msgspec
import psycopg
import pytest

from common.feed.market_hours import NEW_YORK
from common.store import db
from common.streams import ROW_OF
from common.transport.messages import (
    EquityQuote,
    EquityTrade,
    IndexLevel,
    IndicatorValue,
    MinuteBar,
    OptionRow,
    StreamingMetric,
    StreamLag,
)
from tests.helpers.archive import archive_days_before

#: The test's "now", in ms: set when each test starts (the SQL functions judge recency by the server's clock,
#: and a module-level value would age while the tests before this one run).
NOW_MS = int(time.time() * 1000)


@pytest.fixture(autouse=True)
def now_ms() -> None:
    global NOW_MS
    NOW_MS = int(time.time() * 1000)


def trade(ms: int | None = None, day_volume: int = 1_000, price: float = 417.09, size: int = 100, symbol: str = "SPY"):
    ms = NOW_MS if ms is None else ms
    return EquityTrade(symbol, ms, price, size, day_volume, size, 417.08, 417.1, ms * 1_000_000 + 5)


def indicator(ms: int | None = None, day_volume: int = 1_000, sma9: float | None = 417.0512):
    ms = NOW_MS if ms is None else ms
    return IndicatorValue("SPY", ms, day_volume, 417.09, sma9, 416.987654, ms * 1_000_000 + 7)


def option(ms: int | None = None, strike: float = 417.0, kind: str = "C", source: str = "schwab"):
    ms = NOW_MS if ms is None else ms
    return OptionRow(
        "SPY", f"SPY   261124{kind}00417000", ms, kind, strike, "2026-11-24", 1.2345, 1.23, 1.24, 1.235, 1_234,
        5_678, 0.5123, 0.0456, -0.1234, 0.0789, 0.0123, 0.1834, 417.09, source, ms * 1_000_000 + 9,
    )


def metric(ns: int | None = None, actor: str = "writer", errors: int = 0):
    return StreamingMetric(NOW_MS * 1_000_000 if ns is None else ns, actor, None, 500, 50, 12, errors, 0, "running")


def quote(ms: int | None = None, bid: float | None = 417.08, bid_size: int = 3) -> EquityQuote:
    ms = NOW_MS if ms is None else ms
    return EquityQuote("SPY", ms, bid, 417.1, bid_size, 4, ms * 1_000_000 + 3)


def bar(start_ms: int = 1_764_000_000_000, close: float = 417.25, volume: float = 12_345.0, sequence: int = 3,
        symbol: str = "SPY") -> MinuteBar:
    return MinuteBar(symbol, start_ms, 417.1, max(417.4, close), min(417.0, close), close, volume, sequence,
                     start_ms * 1_000_000 + 60_500_000_000)


def rows(*records: msgspec.Struct) -> list[tuple]:
    return [msgspec.structs.astuple(record) for record in records]


@pytest.fixture
def conn(migrated_url):
    connection = db.connect(migrated_url)
    yield connection
    connection.close()


def fetch(conn, sql: str, params: tuple = ()) -> list[tuple]:
    with conn.transaction():
        return conn.execute(sql, params).fetchall()


def test_the_tables_of_stream_rows_are_the_registry_s_each_stored_from_every_field_of_its_struct(conn):
    """sql/ makes the tables of stream rows (the partitioned ones); the registry says which struct each stores
    (`common/streams.py`). The same tables, and each row written field by field, in order, into its columns."""
    partitioned = {name for (name,) in fetch(conn, "SELECT unnest(public.partitioned_tables())")}
    assert set(ROW_OF) == set(db.TABLES) == partitioned
    for table, struct in ROW_OF.items():
        spec = db.TABLES[table]
        assert tuple(field for field, _ in spec.fields) == struct.__struct_fields__, table
        columns = {name for (name,) in fetch(conn, "SELECT column_name FROM information_schema.columns"
                                                   " WHERE table_schema = 'public' AND table_name = %s", (table,))}
        assert {column for column, _ in spec.target} <= columns, table
        read = " ".join(expression for _, expression in spec.target)
        assert [field for field in struct.__struct_fields__ if not re.search(rf"\b{field}\b", read)] == [], \
            f"{table}: every field of {struct.__name__} is stored"


def test_all_four_tables_are_stored(conn):
    inserted = db.write_batches(conn, {
        "equity_data": rows(trade()),
        "indicators": rows(indicator(), indicator(day_volume=1_100, sma9=None)),
        "option_prices": rows(option(), option(kind="P")),
        "streaming_metrics": rows(metric()),
    })
    assert inserted == {"equity_data": 1, "indicators": 2, "option_prices": 2, "streaming_metrics": 1}
    assert fetch(conn, "SELECT ticker, (extract(epoch FROM timestamp) * 1000)::bigint, price, volume, day_volume,"
                       " last_size, bid, ask, received_at IS NOT NULL FROM equity_data") == [
        ("SPY", NOW_MS, Decimal("417.090000"), 100, 1_000, 100, Decimal("417.08"), Decimal("417.1"), True)
    ]
    assert fetch(conn, "SELECT sma9, vwap FROM indicators ORDER BY day_volume") == [
        (Decimal("417.051200"), Decimal("416.987654")), (None, Decimal("416.987654"))
    ]
    assert fetch(conn, "SELECT option_type, expiration_date::text, last_price, delta, implied_volatility,"
                       " greeks_source FROM option_prices ORDER BY option_type") == [
        ("CALL", "2026-11-24", Decimal("1.234500"), Decimal("0.51230000"), Decimal("0.18340000"), "schwab"),
        ("PUT", "2026-11-24", Decimal("1.234500"), Decimal("0.51230000"), Decimal("0.18340000"), "schwab"),
    ]
    assert fetch(conn, "SELECT actor, ticker, records_processed, service_status FROM streaming_metrics") == [
        ("writer", None, 500, "running")
    ]


def test_a_bar_is_stored_once_per_minute_and_a_revised_bar_replaces_it(conn):
    minute = 1_764_000_000_000
    assert db.write_batches(conn, {"equity_bars": rows(bar(minute), bar(minute + 60_000, symbol="QQQ"))}) == {
        "equity_bars": 2}
    assert fetch(conn, "SELECT ticker, (extract(epoch FROM timestamp) * 1000)::bigint, open, high, low, close,"
                       " volume, sequence, source, revised_at FROM equity_bars ORDER BY ticker DESC") == [
        ("SPY", minute, Decimal("417.100000"), Decimal("417.400000"), Decimal("417.000000"), Decimal("417.250000"),
         Decimal("12345.0000"), 3, "stream", None),
        ("QQQ", minute + 60_000, Decimal("417.100000"), Decimal("417.400000"), Decimal("417.000000"),
         Decimal("417.250000"), Decimal("12345.0000"), 3, "stream", None)]
    assert db.write_batches(conn, {"equity_bars": rows(bar(minute))}) == {"equity_bars": 0}, "the same bar: no change"
    assert fetch(conn, "SELECT count(*) FROM equity_bars WHERE revised_at IS NOT NULL") == [(0,)]

    revised = [bar(minute, close=417.5, volume=13_000.0, sequence=4), bar(minute, close=417.6, volume=13_100.0,
                                                                          sequence=5)]
    assert db.write_batches(conn, {"equity_bars": rows(*revised)}) == {"equity_bars": 1}, \
        "sent twice in one batch: the later revision wins, once"
    assert fetch(conn, "SELECT close, high, volume, sequence, revised_at IS NOT NULL FROM equity_bars"
                       " WHERE ticker = 'SPY'") == [(Decimal("417.600000"), Decimal("417.600000"),
                                                      Decimal("13100.0000"), 5, True)]
    assert fetch(conn, "SELECT count(*) FROM equity_bars") == [(2,)]


def test_quotes_are_stored_as_they_come_and_a_replayed_quote_once(conn):
    """Two quote changes in one millisecond are two rows; the same quote again (a replay: a new epoch, which the
    writer's offsets cannot keep out) is skipped, a side without a price included (030)."""
    assert db.write_batches(conn, {"equity_quotes": rows(quote(), quote(bid_size=5), quote(bid=None))}) == {
        "equity_quotes": 3}
    assert db.write_batches(conn, {"equity_quotes": rows(quote(), quote(bid_size=5), quote(bid=None))}) == {
        "equity_quotes": 0}, "replayed: stored once"
    assert fetch(conn, "SELECT ticker, (extract(epoch FROM timestamp) * 1000)::bigint, bid, ask, bid_size, ask_size"
                       " FROM equity_quotes ORDER BY id") == [
        ("SPY", NOW_MS, Decimal("417.080000"), Decimal("417.100000"), 3, 4),
        ("SPY", NOW_MS, Decimal("417.080000"), Decimal("417.100000"), 5, 4),
        ("SPY", NOW_MS, None, Decimal("417.100000"), 3, 4)]


def test_a_bar_from_price_history_never_replaces_the_streams_and_the_streams_replaces_any(conn):
    minute = 1_764_000_000_000
    history = [msgspec.structs.replace(bar(minute + k * 60_000, close=417.3), chart_sequence=-1, source="backfill")
               for k in range(2)]
    db.write_batches(conn, {"equity_bars": rows(bar(minute))})
    assert db.write_batches(conn, {"equity_bars": rows(*history)}) == {"equity_bars": 1}, "only the missing minute"
    assert fetch(conn, "SELECT close, source, sequence FROM equity_bars ORDER BY timestamp") == [
        (Decimal("417.250000"), "stream", 3), (Decimal("417.300000"), "backfill", None)]
    assert db.write_batches(conn, {"equity_bars": rows(*history)}) == {"equity_bars": 0}, "loaded twice: once"
    late = bar(minute + 60_000, close=417.35, sequence=9)
    assert db.write_batches(conn, {"equity_bars": rows(late)}) == {"equity_bars": 1}, "the stream's own bar wins"
    assert fetch(conn, "SELECT close, source, sequence FROM equity_bars ORDER BY timestamp")[1] == (
        Decimal("417.350000"), "stream", 9)


def test_a_bar_no_market_has_is_refused_by_the_table(conn):
    inconsistent = msgspec.structs.replace(bar(), low=418.0)
    with pytest.raises(psycopg.errors.CheckViolation, match="equity_bars_prices_check"):
        db.write_batches(conn, {"equity_bars": rows(inconsistent)})
    assert db.write_batches(conn, {"equity_bars": rows(bar())}) == {"equity_bars": 1}, "the connection goes on"


def test_sub_penny_and_four_decimal_prices_are_exact(conn):
    prices = [417.09, 0.1234, 0.0001, 12345.6789, 1.005, 99999.999999]
    db.write_batches(conn, {"equity_data": rows(*(trade(day_volume=1_000 + i, price=p) for i, p in enumerate(prices)))})
    stored = [row[0] for row in fetch(conn, "SELECT price FROM equity_data ORDER BY day_volume")]
    assert stored == [Decimal(str(p)) for p in prices]


def test_duplicates_in_a_batch_and_already_stored_rows_lose_nothing_else(conn):
    assert db.write_batches(conn, {"equity_data": rows(trade(day_volume=1_000))}) == {"equity_data": 1}
    batch = rows(
        trade(day_volume=1_000),  # already stored
        trade(day_volume=1_100),
        trade(day_volume=1_100),  # repeated within the batch
        trade(day_volume=1_200),
    )
    assert db.write_batches(conn, {"equity_data": batch, "option_prices": rows(option(), option())}) == {
        "equity_data": 2,
        "option_prices": 1,
    }
    assert [row[0] for row in fetch(conn, "SELECT day_volume FROM equity_data ORDER BY 1")] == [1_000, 1_100, 1_200]


def test_greeks_that_cannot_be_stored_become_null(conn):
    blown_up = msgspec.structs.replace(option(), delta=float("nan"), gamma=float("inf"), theta=-1e12, vega=-0.0)
    assert db.write_batches(conn, {"option_prices": rows(blown_up)}) == {"option_prices": 1}
    assert fetch(conn, "SELECT delta, gamma, theta, vega, rho FROM option_prices") == [
        (None, None, None, Decimal("0"), Decimal("0.0123"))
    ]


def test_an_index_options_indicative_quote_is_stored_and_a_stocks_is_null(conn):
    spxw = msgspec.structs.replace(option(strike=6000.0), ticker="$SPX", option_symbol="SPXW  261124C06000000",
                                   indicative_bid=12.3, indicative_ask=12.9, indicative_time_ms=NOW_MS - 500)
    assert db.write_batches(conn, {"option_prices": rows(spxw, option())}) == {"option_prices": 2}
    assert fetch(conn, "SELECT ticker, indicative_bid, indicative_ask, indicative_at = to_timestamp(%s / 1000.0)"
                       " FROM option_prices ORDER BY ticker", (NOW_MS - 500,)) == [
        ("$SPX", Decimal("12.300000"), Decimal("12.900000"), True), ("SPY", None, None, None)]


def test_trades_in_the_same_millisecond_are_both_stored(conn):
    db.write_batches(conn, {"equity_data": rows(trade(day_volume=1_000, size=100), trade(day_volume=1_300, size=300))})
    assert fetch(conn, "SELECT count(DISTINCT timestamp), sum(volume) FROM equity_data") == [(1, 400)]


def test_a_failed_batch_leaves_the_connection_usable_and_nothing_staged(conn):
    with pytest.raises(psycopg.errors.NotNullViolation):
        db.write_batches(conn, {"equity_data": rows(trade()), "option_prices": rows(option(kind="X"))})
    assert fetch(conn, "SELECT count(*) FROM stage_rows") == [(0,)], "the failed batch's lines must not linger"
    assert db.write_batches(conn, {"equity_data": rows(trade(day_volume=2_000))}) == {"equity_data": 1}
    assert fetch(conn, "SELECT day_volume FROM equity_data") == [(2_000,)]


def test_text_with_copy_and_json_escapes_arrives_intact(conn):
    causes = 'a\\b\t"c"\n\\N ü \x01'
    db.write_batches(conn, {"streaming_metrics": rows(msgspec.structs.replace(metric(), reconnect_causes=causes))})
    assert fetch(conn, "SELECT reconnect_causes FROM streaming_metrics") == [(causes,)]


def test_streaming_health(conn):
    assert fetch(conn, "SELECT status, ticks_last_5m FROM get_streaming_health('SPY')") == [("no_data", 0)]
    db.write_batches(conn, {
        "equity_data": rows(trade(day_volume=1_000), trade(day_volume=1_100),
                            trade(ms=NOW_MS - 3_600_000, symbol="QQQ")),
        "streaming_metrics": rows(metric(errors=2), metric(actor="ingest", errors=1)),
    })
    (spy,) = fetch(conn, "SELECT * FROM get_streaming_health('spy')")
    assert spy[0] == "SPY" and spy[3] == 2 and spy[5] == 3 and spy[-1] == "healthy"
    assert (spy[6], spy[7], spy[8], spy[9]) == (0, 0, 0.0, 0), "no gaps, no lag, no journal metrics yet"
    assert spy[4] is not None and 0 <= spy[2] < 60
    assert fetch(conn, "SELECT status FROM get_streaming_health('QQQ')") == [("stale",)]


def test_refresh_equity_stats(conn):
    day = 86_400_000
    db.write_batches(conn, {"equity_data": rows(
        trade(ms=NOW_MS - day, day_volume=1_000, price=410.0, size=100),
        trade(ms=NOW_MS - day + 1_000, day_volume=1_300, price=412.5, size=300),
        trade(ms=NOW_MS - day + 1_000, day_volume=1_100, price=411.0, size=100),  # same ms, earlier by volume
        trade(ms=NOW_MS - day + 2_000, day_volume=1_500, price=409.25, size=200),
    )})
    for _ in range(2):  # the first refresh fills the view, the second is CONCURRENTLY
        with conn.transaction():
            conn.execute("SELECT refresh_equity_stats()")
    stats = fetch(conn, "SELECT ticker, trade_count, open, high, low, close, total_volume, vwap FROM equity_data_stats")
    vwap = (Decimal("410") * 100 + Decimal("412.5") * 300 + Decimal("411") * 100 + Decimal("409.25") * 200) / 700
    assert stats == [("SPY", 4, Decimal("410"), Decimal("412.5"), Decimal("409.25"), Decimal("409.25"), 700,
                      round(vwap, 6))]


def test_cleanup_old_equity_data_drops_the_archived_old_days(conn, tmp_path):
    old_ms, old_ns = NOW_MS - 40 * 86_400_000, (NOW_MS - 40 * 86_400_000) * 1_000_000
    db.write_batches(conn, {
        "equity_data": rows(trade(ms=old_ms), trade()),
        "index_levels": rows(IndexLevel("$SPX", old_ms, 6001.25, 1), IndexLevel("$SPX", NOW_MS, 6002.5, 1)),
        "indicators": rows(indicator(ms=old_ms), indicator()),
        "option_prices": rows(option(ms=old_ms), option()),
        "equity_quotes": rows(quote(ms=old_ms), quote()),
        "streaming_metrics": rows(metric(ns=old_ns), metric()),
        "stream_metrics": rows(StreamLag(old_ns, "ingest/trade/SPY", 7, 5, 5, 0, 0.0),
                               StreamLag(NOW_MS * 1_000_000, "ingest/trade/SPY", 7, 9, 9, 0, 0.0)),
    })
    archive_days_before(conn, datetime.now(NEW_YORK).date() - timedelta(days=30), tmp_path)
    deleted = dict(fetch(conn, "SELECT * FROM cleanup_old_equity_data()"))
    assert deleted == {"equity_data": 1, "index_levels": 1, "indicators": 1, "option_prices": 1, "equity_quotes": 1,
                       "streaming_metrics": 1, "stream_metrics": 1}
    assert fetch(conn, "SELECT (SELECT count(*) FROM streaming_metrics), (SELECT count(*) FROM stream_metrics)") == [
        (1, 1)], "the recent rows stay"
    assert dict(fetch(conn, "SELECT * FROM cleanup_old_equity_data(30)")) == dict.fromkeys(deleted, 0)
    with pytest.raises(psycopg.errors.RaiseException, match="at least 1"):
        fetch(conn, "SELECT * FROM cleanup_old_equity_data(0)")


def test_streaming_health_sees_delivery_lag(conn):
    now_ns = NOW_MS * 1_000_000
    db.write_batches(conn, {
        "equity_data": rows(trade(day_volume=1_000)),
        "stream_metrics": rows(
            StreamLag(now_ns - 10**9, "host/ingest/trade", 7, 500, 500, 400, 500.0),
            StreamLag(now_ns, "host/ingest/trade", 7, 900, 610, 290, 95.5),
            StreamLag(now_ns, "host/indicator/indicator", 7, 900, 800, 100, 30.0),
            StreamLag(now_ns, "host/ingest/option", 7, 900, 700, 200, 60.0),
            StreamLag(now_ns, "host/ingest/metric", 7, 90, 0, 90, 400.0),
        ),
    })
    assert fetch(conn, "SELECT lag_records, lag_seconds, status FROM get_streaming_health('SPY')") == [
        (290, 95.5, "lagging")], "the worst of the stored streams' latest rows; a stream not stored does not count"


def test_a_seed_style_insert_works_beside_the_writers_rows(conn):
    """The seed's four columns (no day_volume) and its indicator columns (no price, no day_volume) are enough."""
    db.write_batches(conn, {"equity_data": rows(trade(day_volume=1_000)), "indicators": rows(indicator())})
    with conn.transaction():
        conn.execute("INSERT INTO equity_data (ticker, timestamp, price, volume)"
                     " VALUES ('SPY', to_timestamp(%s / 1000.0), 417.5, 10)", (NOW_MS,))
        conn.execute("INSERT INTO indicators (ticker, timestamp, sma9, vwap)"
                     " VALUES ('SPY', to_timestamp(%s / 1000.0), 417.1, 417.2)", (NOW_MS,))
    assert fetch(conn, "SELECT day_volume, price FROM equity_data ORDER BY day_volume") == [
        (1_000, Decimal("417.090000")), (None, Decimal("417.500000"))]
    assert fetch(conn, "SELECT day_volume, price, vwap FROM indicators ORDER BY day_volume") == [
        (1_000, Decimal("417.090000"), Decimal("416.987654")), (None, None, Decimal("417.200000"))]
    # NULLS NOT DISTINCT: the same hand-made row twice is one row, not two.
    with pytest.raises(psycopg.errors.UniqueViolation), conn.transaction():
        conn.execute("INSERT INTO equity_data (ticker, timestamp, price, volume)"
                     " VALUES ('SPY', to_timestamp(%s / 1000.0), 417.6, 20)", (NOW_MS,))
    with conn.transaction():
        assert conn.execute("INSERT INTO equity_data (ticker, timestamp, price, volume)"
                            " VALUES ('SPY', to_timestamp(%s / 1000.0), 417.6, 20)"
                            " ON CONFLICT (ticker, timestamp, day_volume) DO NOTHING", (NOW_MS,)).rowcount == 0


def test_the_writers_conflict_key_keeps_same_millisecond_trades_and_skips_replays(conn):
    """Against the NULLS NOT DISTINCT key of 009: distinct trades in one millisecond stay, a replay is skipped."""
    assert fetch(conn, "SELECT i.indnullsnotdistinct FROM pg_constraint c JOIN pg_index i ON i.indexrelid = c.conindid"
                       " WHERE c.conname IN ('equity_data_ticker_timestamp_day_volume_key',"
                       " 'indicators_ticker_timestamp_day_volume_key')") == [(True,), (True,)]
    first = rows(trade(day_volume=1_000, size=100), trade(day_volume=1_300, size=300))
    assert db.write_batches(conn, {"equity_data": first,
                                   "indicators": rows(indicator(day_volume=1_000), indicator(day_volume=1_300))}) == {
        "equity_data": 2, "indicators": 2}
    replay = rows(trade(day_volume=1_300, size=300), trade(day_volume=1_400, size=100))
    assert db.write_batches(conn, {"equity_data": replay, "indicators": rows(indicator(day_volume=1_300))}) == {
        "equity_data": 1, "indicators": 0}
    assert fetch(conn, "SELECT day_volume FROM equity_data ORDER BY 1") == [(1_000,), (1_300,), (1_400,)]


def test_equity_stats_count_a_seed_style_row(conn):
    """A NULL day_volume sorts last in its millisecond: never the open if a known trade shares it, the close if so."""
    db.write_batches(conn, {"equity_data": rows(trade(ms=NOW_MS - 1_000, day_volume=1_000, price=410.0, size=100),
                                                trade(ms=NOW_MS, day_volume=1_100, price=411.0, size=100))})
    with conn.transaction():
        for ms, price in ((NOW_MS - 1_000, 409.0), (NOW_MS, 412.0)):
            conn.execute("INSERT INTO equity_data (ticker, timestamp, price, volume)"
                         " VALUES ('SPY', to_timestamp(%s / 1000.0), %s, 50)", (ms, price))
        conn.execute("SELECT refresh_equity_stats()")
    assert fetch(conn, "SELECT trade_count, open, close, high, low, total_volume FROM equity_data_stats") == [
        (4, Decimal("410"), Decimal("412"), Decimal("412"), Decimal("409"), 300)]


def test_streaming_health_says_where_the_data_comes_from(conn):
    insert = ("INSERT INTO streaming_metrics (timestamp, actor, service_status, source)"
              " VALUES (now() - %s * interval '1 second', %s, 'running', %s)")
    source = "SELECT source, status FROM get_streaming_health('SPY')"
    assert fetch(conn, source) == [(None, "no_data")], "no metrics within the hour"
    with conn.transaction():
        conn.execute(insert, (7_200, "ingest", "schwab"))  # older than the hour: not counted
        conn.execute(insert, (60, "ingest", None))  # written before the column existed
    assert fetch(conn, source) == [(None, "no_data")]
    with conn.transaction():
        conn.execute(insert, (30, "metrics", "simulator"))
    assert fetch(conn, source) == [("simulator", "no_data")]
    with conn.transaction():
        conn.execute(insert, (10, "ingest", "schwab"))
    assert fetch(conn, source) == [("schwab", "no_data")]
    with conn.transaction():
        health_columns = [c.name for c in conn.execute("SELECT * FROM get_streaming_health('SPY')").description]
    assert health_columns[-2:] == ["source", "status"]
    assert health_columns[:12] == ["ticker", "last_tick_at", "seconds_since_last_tick", "ticks_last_5m",
                                   "last_metric_at", "errors_last_hour", "gaps_last_hour", "lag_records",
                                   "lag_seconds", "journal_bytes", "reconnects_last_hour", "ingest_status"]
    with pytest.raises(psycopg.errors.CheckViolation), conn.transaction():
        conn.execute(insert, (5, "writer", "imagined"))


def test_bars_stored_while_the_simulator_stands_in_are_marked_simulated(migrated_url):
    """Bars are kept for ever: the simulator's must never pass for Schwab's (029)."""
    minute = 1_764_000_000_000
    simulated = db.connect(migrated_url, simulated=True)
    real = db.connect(migrated_url)
    try:
        db.write_batches(simulated, {"equity_bars": rows(bar(minute))})
        db.write_batches(real, {"equity_bars": rows(bar(minute + 60_000))})
        assert fetch(real, "SELECT (extract(epoch FROM timestamp) * 1000)::bigint, simulated FROM equity_bars"
                           " ORDER BY timestamp") == [(minute, True), (minute + 60_000, False)]
    finally:
        simulated.close()
        real.close()
