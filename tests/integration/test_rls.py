"""Row-level security and privileges, as Supabase's API roles see them.

Always connected as `postgres` (not a superuser) and switched with SET ROLE;
the local cluster has Supabase's default privileges (ALL to anon), so these
tests fail if the migrations' REVOKEs go missing.

By default no API role reads the market data (028): on Supabase anyone can
sign up, so `authenticated` is anyone. `set_market_read` names who reads:
`anon`, `authenticated`, or signed-in users with a JWT claim;
`set_public_read(true)` is its shorthand for anon. The internal tables never
open.
"""

from __future__ import annotations

import json
from datetime import datetime, timedelta

import psycopg
import pytest

from common.feed.market_hours import NEW_YORK
from common.store.migrate import SQL_DIR
from tests.helpers.archive import archive_days_before

DENIED = (psycopg.errors.InsufficientPrivilege,)

ROWS = {
    "equity_data": "INSERT INTO equity_data (ticker, timestamp, price, volume, day_volume)"
    " VALUES ('SPY', now() - interval '{age}', 417.09, 100, {n})",
    "index_levels": "INSERT INTO index_levels (ticker, timestamp, level)"
    " VALUES ('$SPX', now() - interval '{age}' + {n} * interval '1 ms', 6001.25)",
    "indicators": "INSERT INTO indicators (ticker, timestamp, vwap, price, day_volume)"
    " VALUES ('SPY', now() - interval '{age}', 417.0, 417.09, {n})",
    "option_prices": "INSERT INTO option_prices (ticker, timestamp, option_type, strike_price, expiration_date)"
    " VALUES ('SPY', now() - interval '{age}', 'CALL', 417 + {n}, current_date)",
    "streaming_metrics": "INSERT INTO streaming_metrics (timestamp, actor, service_status)"
    " VALUES (now() - interval '{age}' + {n} * interval '1 ms', 'writer', 'running')",
    "equity_quotes": "INSERT INTO equity_quotes (ticker, timestamp, bid, ask, bid_size, ask_size)"
    " VALUES ('SPY', now() - interval '{age}', 417.08, 417.1, 3, {n})",
    "equity_bars": "INSERT INTO equity_bars (ticker, timestamp, open, high, low, close, volume)"
    " VALUES ('SPY', date_trunc('minute', now() - interval '{age}') + {n} * interval '1 minute',"
    " 417.1, 417.4, 417.0, 417.25, 1000)",
}
UPDATE = "UPDATE {table} SET timestamp = timestamp + interval '1 ms'"
#: Market data the database derives from the rows above (024: the bar rollups, kept up by triggers on equity_bars):
#: read like the data, public read included; written by service_role and the triggers only.
DERIVED = ("equity_bar_rollups",)
#: The service's own bookkeeping: service_role and the writer role only, whatever public read says.
INTERNAL = ("stream_offsets", "stream_metrics", "schema_migrations")


@pytest.fixture
def conn(migrated_url):
    """Autocommit, so that each denied statement fails alone; one row per table, inserted by the owner."""
    with psycopg.connect(migrated_url, autocommit=True) as connection:
        for table, insert in ROWS.items():
            connection.execute(insert.format(age="1 minute", n=1))
        connection.execute("INSERT INTO stream_metrics (timestamp, stream, epoch, published_seq, committed_seq,"
                           " lag_records, lag_seconds) VALUES (now(), 'ingest/trade/SPY', 1, 5, 5, 0, 0)")
        connection.execute("INSERT INTO stream_offsets (consumer, stream, epoch, seq)"
                           " VALUES ('writer', 'ingest/trade/SPY', 1, 5)")
        yield connection


def count(conn: psycopg.Connection, table: str) -> int:
    return conn.execute(f"SELECT count(*) FROM {table}").fetchone()[0]


def assert_reads_nothing(conn: psycopg.Connection, relations=(*ROWS, *DERIVED, "equity_data_stats", *INTERNAL)
                         ) -> None:
    for relation in relations:
        with pytest.raises(DENIED):
            conn.execute(f"SELECT * FROM {relation}")


def assert_reads_the_data(conn: psycopg.Connection) -> None:
    for table in ROWS:
        assert count(conn, table) == 1, table
    for table in DERIVED:
        assert count(conn, table) >= 3, table  # the bar's 5m, 15m and 1h (and 1d in the regular session)
    conn.execute("SELECT * FROM equity_data_stats").fetchall()
    assert conn.execute("SELECT status FROM get_streaming_health('SPY')").fetchone() == ("healthy",)


@pytest.mark.parametrize("role", ["anon", "authenticated"])
def test_api_roles_write_nothing(conn, role):
    conn.execute(f"SET ROLE {role}")
    for table, insert in ROWS.items():
        for statement in (insert.format(age="2 minutes", n=2), UPDATE.format(table=table), f"DELETE FROM {table}",
                          f"TRUNCATE {table}"):
            with pytest.raises(DENIED):
                conn.execute(statement)
    for table in DERIVED:
        for statement in (f"INSERT INTO {table} SELECT * FROM {table}", f"UPDATE {table} SET bar_count = 0",
                          f"DELETE FROM {table}", f"TRUNCATE {table}"):
            with pytest.raises(DENIED):
                conn.execute(statement)
    conn.execute("RESET ROLE")
    for table in ROWS:
        assert count(conn, table) == 1, table


def test_anon_reads_nothing_by_default(conn):
    conn.execute("SET ROLE anon")
    assert_reads_nothing(conn)
    with pytest.raises(DENIED):
        conn.execute("SELECT * FROM get_streaming_health('SPY')")


def test_authenticated_reads_no_market_data_by_default_only_the_health_summary(conn):
    conn.execute("SET ROLE authenticated")
    assert_reads_nothing(conn)
    assert conn.execute("SELECT status FROM get_streaming_health('SPY')").fetchone() == ("healthy",)


def claims(conn: psycopg.Connection, app_metadata: dict | None) -> None:
    """The JWT claims PostgREST and Realtime set for a request, for the rest of this session."""
    conn.execute("SELECT set_config('request.jwt.claims', %s, false)",
                 ("" if app_metadata is None else json.dumps({"role": "authenticated", "app_metadata": app_metadata}),))


def test_market_read_opens_to_the_readers_named_and_no_one_else(conn):
    assert conn.execute("SELECT market_readers()").fetchone() == ([],)
    assert conn.execute("SELECT set_market_read(ARRAY['claim:market_data'])").fetchone() == (["claim:market_data"],)
    conn.execute("SET ROLE authenticated")
    for granted, said in (({"market_data": True}, True), ({"market_data": "true"}, True), ({"market_data": False}, False),
                          ({"other": True}, False), (None, False)):
        claims(conn, granted)
        assert [count(conn, table) for table in ROWS] == [int(said)] * len(ROWS), granted
    with pytest.raises(DENIED):
        conn.execute("SELECT * FROM equity_data_stats")  # a view cannot check a claim: not granted
    assert_reads_nothing(conn, INTERNAL)
    conn.execute("RESET ROLE")
    conn.execute("SET ROLE anon")
    assert_reads_nothing(conn)
    conn.execute("RESET ROLE")

    assert conn.execute("SELECT set_market_read(ARRAY['authenticated', 'anon'])").fetchone() == (
        ["anon", "authenticated"],)
    for role in ("authenticated", "anon"):
        conn.execute(f"SET ROLE {role}")
        assert_reads_the_data(conn)
        assert_reads_nothing(conn, INTERNAL)
        conn.execute("RESET ROLE")
    assert conn.execute("SELECT public_read_enabled()").fetchone() == (True,)

    conn.execute("SELECT set_market_read(ARRAY[]::text[])")
    for role in ("authenticated", "anon"):
        conn.execute(f"SET ROLE {role}")
        assert_reads_nothing(conn)
        conn.execute("RESET ROLE")
    for bad, said in (("ARRAY['admin']", "'admin' is not a reader; accepted: anon, authenticated, or claim:<key>"),
                      ("ARRAY['claim:Bad Key']", "is not a reader"), ("NULL", "not NULL"),
                      ("ARRAY['authenticated', 'claim:x']", "name one or the other")):
        with pytest.raises(psycopg.errors.RaiseException, match=said):
            conn.execute(f"SELECT set_market_read({bad})")
    assert conn.execute("SELECT market_readers()").fetchone() == ([],), "a refused call changes nothing"


def test_public_read_opens_the_data_to_anon_and_never_the_internal_tables(conn):
    for _ in range(2):  # twice: harmless
        conn.execute("SELECT public.set_public_read(true)")
    assert conn.execute("SELECT public.public_read_enabled()").fetchone() == (True,)
    conn.execute("SET ROLE anon")
    assert_reads_the_data(conn)
    assert_reads_nothing(conn, INTERNAL)
    conn.execute("RESET ROLE")

    for _ in range(2):
        conn.execute("SELECT public.set_public_read(false)")
    assert conn.execute("SELECT public.public_read_enabled()").fetchone() == (False,)
    conn.execute("SET ROLE anon")
    assert_reads_nothing(conn)
    with pytest.raises(DENIED):
        conn.execute("SELECT * FROM get_streaming_health('SPY')")
    conn.execute("RESET ROLE")
    conn.execute("SET ROLE authenticated")  # anon's switch opens nothing to signed-in users
    assert_reads_nothing(conn)


def test_public_read_is_the_grant_and_the_policy(conn):
    """Both walls move together: with the switch on anon has the privilege and a policy, with it off neither."""
    policies = "SELECT count(*) FROM pg_policies WHERE 'anon' = ANY (roles)"
    privileges = ("SELECT count(*) FROM unnest(%s::text[]) AS t (name)"
                  " WHERE has_table_privilege('anon', 'public.' || name, 'SELECT')")
    conn.execute("SELECT public.set_public_read(true)")
    assert conn.execute(policies).fetchone() == (len(ROWS) + len(DERIVED),)
    assert conn.execute(privileges, ([*ROWS, *DERIVED, "equity_data_stats"],)).fetchone() == (
        len(ROWS) + len(DERIVED) + 1,)
    assert conn.execute(privileges, (list(INTERNAL),)).fetchone() == (0,)
    conn.execute("SELECT public.set_public_read(false)")
    assert conn.execute(policies).fetchone() == (0,)
    assert conn.execute(privileges, ([*ROWS, *DERIVED, "equity_data_stats", *INTERNAL],)).fetchone() == (0,)
    with pytest.raises(psycopg.errors.RaiseException, match="not NULL"):
        conn.execute("SELECT public.set_public_read(NULL)")


@pytest.mark.parametrize("role", ["anon", "authenticated", "service_role"])
def test_api_roles_cannot_flip_public_read(conn, role):
    conn.execute(f"SET ROLE {role}")
    for statement in ("SELECT public.set_public_read(true)", "SELECT public.set_public_read(false)",
                      "SELECT public.public_read_enabled()", "SELECT public.market_readers()",
                      "SELECT public.set_market_read(ARRAY['authenticated'])", "SELECT * FROM public.market_read"):
        with pytest.raises(DENIED):
            conn.execute(statement)
    conn.execute("RESET ROLE")
    assert conn.execute("SELECT public.public_read_enabled()").fetchone() == (False,)


@pytest.mark.parametrize("readers", [[], ["anon"], ["authenticated"]])
def test_applying_the_read_migration_again_keeps_the_switch(conn, readers):
    conn.execute("SELECT public.set_market_read(%s::text[])", (readers,))
    for _ in range(2):
        conn.execute(SQL_DIR.joinpath("028_market_read.sql").read_text())
    assert conn.execute("SELECT public.market_readers()").fetchone() == (readers,)
    for role in ("anon", "authenticated"):
        conn.execute(f"SET ROLE {role}")
        if role in readers:
            assert_reads_the_data(conn)
            assert_reads_nothing(conn, INTERNAL)
        else:
            assert_reads_nothing(conn)
        conn.execute("RESET ROLE")


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


@pytest.mark.parametrize("role", ["anon", "authenticated"])
def test_api_roles_cannot_see_the_migration_log(conn, role):
    conn.execute(f"SET ROLE {role}")
    with pytest.raises(DENIED):
        conn.execute("SELECT * FROM schema_migrations")


def test_service_role_writes_everything(conn, tmp_path):
    conn.execute("SET ROLE service_role")
    # A day far back has no partitions yet (sql/022): service_role may make them, as a hand insert needs.
    conn.execute("SELECT create_partitions(day, day) FROM"
                 " (SELECT ((now() - interval '40 days') AT TIME ZONE 'America/New_York')::date AS day) AS d")
    for table, insert in ROWS.items():
        conn.execute(insert.format(age="40 days", n=2))
        assert count(conn, table) == 2, table
        assert conn.execute(UPDATE.format(table=table)).rowcount == 2, table
    conn.execute("INSERT INTO stream_metrics (timestamp, stream, epoch, published_seq, committed_seq, lag_records,"
                 " lag_seconds) VALUES (now() - interval '40 days', 'ingest/trade/SPY', 1, 5, 5, 0, 0)")
    conn.execute("RESET ROLE")  # the writer archives (its role records archives; service_role may only read them)
    archive_days_before(conn, datetime.now(NEW_YORK).date() - timedelta(days=30), tmp_path)
    conn.execute("SET ROLE service_role")
    deleted = dict(conn.execute("SELECT * FROM cleanup_old_equity_data(30)").fetchall())
    assert deleted == {**dict.fromkeys(set(ROWS) - {"equity_bars"}, 1), "stream_metrics": 1}
    assert count(conn, "stream_metrics") == 1
    assert count(conn, "stream_offsets") == 1, "retention never touches the writer's position"
    assert count(conn, "equity_bars") == 2, "retention keeps the bars: the small, long history"
    conn.execute("SELECT refresh_equity_stats()")
    for table in ROWS:
        assert conn.execute(f"DELETE FROM {table}").rowcount == (2 if table == "equity_bars" else 1), table


@pytest.mark.parametrize("role", ["anon", "authenticated"])
def test_api_roles_neither_see_nor_move_the_writers_offsets(conn, role):
    conn.execute(f"SET ROLE {role}")
    for statement in ("SELECT seq FROM stream_offsets", "UPDATE stream_offsets SET seq = 1",
                      "DELETE FROM stream_offsets",
                      "INSERT INTO stream_offsets (consumer, stream, epoch, seq) VALUES ('x', 'y', 1, 1)"):
        with pytest.raises(DENIED):
            conn.execute(statement)
    conn.execute("RESET ROLE")
    conn.execute("SET ROLE service_role")
    assert conn.execute("SELECT seq FROM stream_offsets").fetchall() == [(5,)]
    conn.execute("UPDATE stream_offsets SET seq = 6")
    assert conn.execute("SELECT seq FROM stream_offsets").fetchall() == [(6,)]
