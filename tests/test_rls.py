"""Row-level security and privileges, as Supabase's API roles see them.

Always connected as `postgres` (not a superuser) and switched with SET ROLE;
the local cluster has Supabase's default privileges (ALL to anon), so these
tests fail if the migrations' REVOKEs go missing.
"""

from __future__ import annotations

import psycopg
import pytest

DENIED = (psycopg.errors.InsufficientPrivilege,)

ROWS = {
    "equity_data": "INSERT INTO equity_data (ticker, timestamp, price, volume, day_volume)"
    " VALUES ('SPY', now() - interval '{age}', 417.09, 100, {n})",
    "indicators": "INSERT INTO indicators (ticker, timestamp, vwap, price, day_volume)"
    " VALUES ('SPY', now() - interval '{age}', 417.0, 417.09, {n})",
    "option_prices": "INSERT INTO option_prices (ticker, timestamp, option_type, strike_price, expiration_date)"
    " VALUES ('SPY', now() - interval '{age}', 'CALL', 417 + {n}, current_date)",
    "streaming_metrics": "INSERT INTO streaming_metrics (timestamp, actor, service_status)"
    " VALUES (now() - interval '{age}' + {n} * interval '1 ms', 'writer', 'running')",
}
UPDATE = "UPDATE {table} SET timestamp = timestamp + interval '1 ms'"


@pytest.fixture
def conn(migrated_url):
    """Autocommit, so that each denied statement fails alone; one row per table, inserted by the owner."""
    with psycopg.connect(migrated_url, autocommit=True) as connection:
        for table, insert in ROWS.items():
            connection.execute(insert.format(age="1 minute", n=1))
        yield connection


def count(conn: psycopg.Connection, table: str) -> int:
    return conn.execute(f"SELECT count(*) FROM {table}").fetchone()[0]


@pytest.mark.parametrize("role", ["anon", "authenticated"])
def test_api_roles_read_everything_and_write_nothing(conn, role):
    conn.execute(f"SET ROLE {role}")
    for table, insert in ROWS.items():
        assert count(conn, table) == 1, table
        for statement in (insert.format(age="2 minutes", n=2), UPDATE.format(table=table), f"DELETE FROM {table}",
                          f"TRUNCATE {table}"):
            with pytest.raises(DENIED):
                conn.execute(statement)
        assert count(conn, table) == 1, table
    conn.execute("SELECT * FROM equity_data_stats").fetchall()
    assert conn.execute("SELECT status FROM get_streaming_health('SPY')").fetchone() == ("healthy",)


@pytest.mark.parametrize("role", ["anon", "authenticated"])
def test_api_roles_cannot_clean_up_or_refresh(conn, role):
    conn.execute(f"SET ROLE {role}")
    with pytest.raises(DENIED):
        conn.execute("SELECT * FROM cleanup_old_equity_data(1)")
    with pytest.raises(DENIED):
        conn.execute("SELECT refresh_equity_stats()")
    with pytest.raises(DENIED):
        conn.execute("REFRESH MATERIALIZED VIEW equity_data_stats")
    with pytest.raises(DENIED):
        conn.execute("SELECT nextval('equity_data_id_seq')")


def test_anon_cannot_see_the_migration_log(conn):
    conn.execute("SET ROLE anon")
    with pytest.raises(DENIED):
        conn.execute("SELECT * FROM schema_migrations")


def test_service_role_writes_everything(conn):
    conn.execute("SET ROLE service_role")
    for table, insert in ROWS.items():
        conn.execute(insert.format(age="40 days", n=2))
        assert count(conn, table) == 2, table
        assert conn.execute(UPDATE.format(table=table)).rowcount == 2, table
    deleted = dict(conn.execute("SELECT * FROM cleanup_old_equity_data(30)").fetchall())
    assert deleted == dict.fromkeys(ROWS, 1)
    conn.execute("SELECT refresh_equity_stats()")
    for table in ROWS:
        assert conn.execute(f"DELETE FROM {table}").rowcount == 1, table


@pytest.mark.parametrize("role", ["anon", "authenticated"])
def test_api_roles_see_but_never_move_the_writers_offsets(conn, role):
    conn.execute("INSERT INTO stream_offsets (consumer, stream, epoch, seq) VALUES ('writer', 'ingest/trade/SPY', 1, 5)")
    conn.execute(f"SET ROLE {role}")
    assert conn.execute("SELECT seq FROM stream_offsets").fetchall() == [(5,)]
    for statement in ("UPDATE stream_offsets SET seq = 1", "DELETE FROM stream_offsets",
                      "INSERT INTO stream_offsets (consumer, stream, epoch, seq) VALUES ('x', 'y', 1, 1)"):
        with pytest.raises(DENIED):
            conn.execute(statement)
    conn.execute("RESET ROLE")
    conn.execute("SET ROLE service_role")
    conn.execute("UPDATE stream_offsets SET seq = 6")
    assert conn.execute("SELECT seq FROM stream_offsets").fetchall() == [(6,)]
