"""storage_report on a known data set: sizes as Postgres measures them, rows per trading day, days to the budget."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal

import psycopg
import pytest

from common.store.storage import MB, main, read_report
from tests.helpers.roles import writer_login

#: equity_data rows per New York day: two days inside the 7-day window, one (40 days back) outside it.
DAYS = {"1 day": 300, "2 days": 100, "40 days": 50}


@pytest.fixture
def filled(migrated_url):
    with psycopg.connect(migrated_url, autocommit=True) as conn:
        for first in range(-41, 1, 7):  # at most 64 partitions a call (031): 7 days of the 8 tables at most
            conn.execute("SELECT create_partitions(current_date + %s, current_date + least(%s + 6, 0))", (first, first))
        for age, count in DAYS.items():
            # Noon in New York `age` ago, one row a second: all on one New York date.
            conn.execute("INSERT INTO equity_data (ticker, timestamp, price, volume, day_volume)"
                         " SELECT 'SPY', date_trunc('day', (now() - %s::interval) AT TIME ZONE 'America/New_York')"
                         "   AT TIME ZONE 'America/New_York' + interval '12 hours' + n * interval '1 second',"
                         "   417.09, 100, n FROM generate_series(1, %s) AS n", (age, count))
        yield migrated_url


def test_each_table_is_measured_and_the_budget_is_counted_in_trading_days(filled):
    rows = {row.table_name: row for row in read_report(filled, budget_mb=500, window_days=7)}
    assert set(rows) == {"equity_data", "index_levels", "indicators", "option_prices", "equity_bars", "equity_quotes",
                         "equity_bar_rollups", "streaming_metrics", "stream_metrics", "total"}
    with psycopg.connect(filled) as conn:
        size, table, indexes, database = conn.execute(
            "SELECT sum(pg_total_relation_size(relid)), sum(pg_table_size(relid)), sum(pg_indexes_size(relid)),"
            " pg_database_size(current_database()) FROM pg_partition_tree('equity_data') WHERE isleaf").fetchone()
    trades = rows["equity_data"]
    assert (trades.total_bytes, trades.table_bytes, trades.index_bytes) == (size, table, indexes)
    assert trades.row_count == 450 and trades.trading_days == 2
    assert trades.rows_per_day == Decimal("200.0"), "the window's 400 rows over its 2 trading days"
    assert trades.bytes_per_row == round(Decimal(size) / 450, 1)
    assert trades.bytes_per_day == round(200 * trades.bytes_per_row)
    assert rows["indicators"].row_count == 0 and rows["indicators"].bytes_per_day == 0

    total = rows["total"]
    assert total.bytes_per_day == trades.bytes_per_day, "only the trades grow"
    assert abs(total.total_bytes - database) < MB, "the whole database, what Supabase counts"
    assert total.days_until_full == round((500 * MB - Decimal(total.total_bytes)) / total.bytes_per_day, 1)


def test_a_budget_already_spent_leaves_no_days_and_a_bad_one_is_refused(filled):
    total = read_report(filled, budget_mb=1, window_days=7)[-1]
    assert total.days_until_full == 0, "a 1 MB budget is spent by the catalog alone"
    with pytest.raises(psycopg.errors.RaiseException, match="budget_mb must be at least 1"):
        read_report(filled, budget_mb=0, window_days=7)


def test_make_storage_prints_the_table_and_the_days(filled, monkeypatch, capsys):
    monkeypatch.setenv("DATABASE_URL", filled)
    monkeypatch.setenv("STREAM_SOURCE", "simulator")
    assert main(["--budget-mb", "500"]) == 0
    printed = capsys.readouterr().out
    assert "equity_data" in printed and "the 500 MB budget is full in" in printed
    monkeypatch.setenv("DATABASE_URL", filled.replace("@", "x@", 1))
    assert main([]) == 2
    assert "storage:" in capsys.readouterr().err


def test_a_part_day_is_projected_to_a_whole_session_and_said_to_be_rough_in_its_first_hour(migrated_url, monkeypatch,
                                                                                           capsys):
    """Half an hour into a session with one trade a second: 1,800 rows are 23,400 a day, not 1,800."""
    with psycopg.connect(migrated_url, autocommit=True) as conn:
        conn.execute("SELECT create_partitions('2026-11-18', '2026-11-18')")
        conn.execute("INSERT INTO equity_data (ticker, timestamp, price, volume, day_volume)"
                     " SELECT 'SPY', '2026-11-18 09:30:00-05'::timestamptz + n * interval '1 second', 417.09, 100, n"
                     " FROM generate_series(0, 1799) AS n")
    half_hour_in = datetime.fromisoformat("2026-11-18T10:00:00-05:00")
    trades = next(row for row in read_report(migrated_url, 500, 7, half_hour_in) if row.table_name == "equity_data")
    assert trades.trading_days == 0 and trades.rows_per_day == Decimal("23400.0")
    after_the_close = datetime.fromisoformat("2026-11-19T12:00:00-05:00")
    trades = next(row for row in read_report(migrated_url, 500, 7, after_the_close) if row.table_name == "equity_data")
    assert trades.trading_days == 1 and trades.rows_per_day == Decimal("1800.0"), "a complete day counts as it was"

    monkeypatch.setenv("DATABASE_URL", migrated_url)
    monkeypatch.setenv("STREAM_SOURCE", "simulator")
    assert main(["--as-of", half_hour_in.isoformat()]) == 0
    printed = capsys.readouterr().out
    assert "projected to a whole day from 30 min of the session" in printed and "rough" in printed
    assert "Postgres holds the newest" in printed and "trading days of every table" in printed


def test_storage_report_works_for_service_role_and_make_storage_for_the_readmes_login(filled, monkeypatch, capsys):
    """022 took from service_role a helper storage_report calls, and the README's login could not run it."""
    with psycopg.connect(filled, autocommit=True) as conn:
        conn.execute("SET ROLE service_role")
        rows = {row[0]: row[4] for row in conn.execute("SELECT * FROM storage_report(500)").fetchall()}
        assert rows["equity_data"] == sum(DAYS.values())
        for role in ("anon", "authenticated"):
            conn.execute(f"SET ROLE {role}")
            with pytest.raises(psycopg.errors.InsufficientPrivilege):
                conn.execute("SELECT * FROM storage_report(500)")
    monkeypatch.setenv("DATABASE_URL", writer_login(filled))
    monkeypatch.setenv("STREAM_SOURCE", "simulator")
    assert main(["--budget-mb", "500"]) == 0, capsys.readouterr().err
    assert "the 500 MB budget is full in" in capsys.readouterr().out
