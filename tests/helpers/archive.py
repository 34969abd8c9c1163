"""Days of realistic rows made in SQL, for the archive's tests and its benchmark.

`fill_equity_day`: `tickers` tickers trading once a second (with jitter) through
the regular session, prices a random walk on pennies, day_volume increasing,
received 5-50 ms later. `fill_option_day`: `contracts` contracts (calls and
puts, strikes a dollar apart) snapshotted every minute of the session, the
underlying a random walk and each contract's prices and greeks following it.
Both make the day's partitions first.
"""

from __future__ import annotations

from datetime import date
from pathlib import Path

import psycopg

from common.store import archive
from common.store.archive import day_bounds

SESSION_SECONDS = 23_400  # 09:30 to 16:00


def _open(day: date) -> str:
    """09:30 New York of `day`, as an SQL timestamptz literal."""
    start, _ = day_bounds(day)
    return f"'{start.isoformat()}'::timestamptz + interval '9 hours 30 minutes'"


def fill_equity_day(conn: psycopg.Connection, day: date, tickers: int = 50, seconds: int = SESSION_SECONDS) -> int:
    conn.execute("SELECT public.create_partitions(%s, %s)", (day, day))
    conn.execute("SELECT setseed(0.42)")
    return conn.execute(f"""
        INSERT INTO public.equity_data (ticker, timestamp, price, volume, day_volume, last_size, bid, ask,
                                        received_at)
        SELECT ticker, ts, price, volume, sum(volume) OVER w, volume, price - 0.01, price + 0.01,
               ts + (5 + floor(random() * 45)) * interval '1 ms'
        FROM (
            SELECT 'T' || lpad(t::text, 3, '0') AS ticker,
                   {_open(day)} + s * interval '1 second' + floor(random() * 1000000) * interval '1 microsecond' AS ts,
                   round((50 + t * 7 + sum((random() - 0.5) * 0.06) OVER (PARTITION BY t ORDER BY s))::numeric, 2)
                       AS price,
                   (1 + floor(random() * 5)) * 100 + floor(random() * 3) AS volume, s, t
            FROM generate_series(1, %s) AS t, generate_series(0, %s - 1) AS s
        ) AS walk
        WINDOW w AS (PARTITION BY ticker ORDER BY s)""", (tickers, seconds)).rowcount


def fill_option_day(conn: psycopg.Connection, day: date, contracts: int = 1500, minutes: int = 390) -> int:
    conn.execute("SELECT public.create_partitions(%s, %s)", (day, day))
    conn.execute("SELECT setseed(0.17)")
    return conn.execute(f"""
        WITH spot AS (
            SELECT m, round((600 + sum((random() - 0.5) * 0.8) OVER (ORDER BY m))::numeric, 2) AS u
            FROM generate_series(0, %s - 1) m
        ), quote AS (
            SELECT c, m, u, 600 - (%s / 4) + (c / 2) AS k, CASE WHEN c %% 2 = 0 THEN 'CALL' ELSE 'PUT' END AS kind,
                   greatest(0.01, abs(u - (600 - (%s / 4) + (c / 2))) * 0.02 + 0.6) AS vol
            FROM spot, generate_series(0, %s - 1) c
        )
        INSERT INTO public.option_prices (ticker, timestamp, option_type, strike_price, expiration_date, last_price,
            bid, ask, mark, volume, open_interest, delta, gamma, theta, vega, rho, implied_volatility,
            underlying_price, option_symbol, greeks_source, received_at)
        SELECT 'SPY', ts, kind, k, %s, round(mid, 2), round(mid - 0.01, 2), round(mid + 0.01, 2), round(mid, 3),
               m * 3 + c %% 17, 1000 + c * 7,
               round((CASE kind WHEN 'CALL' THEN 1 ELSE -1 END * (0.5 + 0.5 * tanh((u - k) / 4)))::numeric, 8),
               round((0.125 / cosh((u - k) / 4) ^ 2)::numeric, 8), round((-0.3 - vol * 0.1)::numeric, 8),
               round((0.05 / cosh((u - k) / 6))::numeric, 8),
               round((0.01 * (0.5 + 0.5 * tanh((u - k) / 4)))::numeric, 8),
               round((0.15 + abs(u - k) * 0.002 + m * 0.00001)::numeric, 8), u,
               'SPY   ' || to_char(%s::date, 'YYMMDD') || left(kind, 1) || lpad((k * 1000)::bigint::text, 8, '0'),
               'model', ts + (5 + floor(random() * 45)) * interval '1 ms'
        FROM (SELECT *, {_open(day)} + m * interval '1 minute' AS ts,
                     greatest(0.01, CASE kind WHEN 'CALL' THEN greatest(u - k, 0) ELSE greatest(k - u, 0) END + vol)
                     AS mid FROM quote) AS q""", (minutes, contracts, contracts, contracts, day, day)).rowcount


def rows_of(conn: psycopg.Connection, table: str, day: date) -> list[tuple]:
    """Every row of the table's day, every column, in id order: what a restore must give back."""
    start, end = day_bounds(day)
    return conn.execute(f'SELECT * FROM public."{table}" WHERE timestamp >= %s AND timestamp < %s ORDER BY id',
                        (start, end)).fetchall()


def archive_days_before(conn: psycopg.Connection, cutoff: date, directory: Path) -> int:
    """Archive every partitioned table's days before `cutoff` to `directory`, as `make archive` would, so that
    retention may drop them; returns how many were archived."""
    destination = archive.LocalDestination(directory)
    days = [(table, day) for table, day, _, _ in archive.partitions(conn, archive.partitioned_tables(conn), cutoff)]
    for table, day in days:
        archive.archive_day(conn, table, day, destination)
    return len(days)
