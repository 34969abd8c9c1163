"""Daily partitions (sql/022): where rows land, what retention drops, the upgrade of a populated database, the
plans of a user's queries, and who may touch a partition."""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from pathlib import Path

import msgspec
import psycopg
import pytest

from common.feed.market_hours import NEW_YORK
from common.store import db, migrate
from tests.helpers.archive import archive_days_before
from tests.helpers.partitions import sql_before
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

TABLES = ("equity_data", "index_levels", "indicators", "option_prices", "equity_bars", "equity_quotes",
          "streaming_metrics", "stream_metrics")
#: The migrations that only add columns today's writer writes: a database filled under an old schema by today's
#: writer has them first.
TODAYS_COLUMNS = ("033_entitlement.sql", "034_trade_columns.sql")
#: The tables before 032 made index_levels: what a database filled under an old schema has.
OLD_TABLES = tuple(table for table in TABLES if table != "index_levels")
#: Instants around New York midnights: the last millisecond of 2026-10-31 (EDT, 04:00 UTC) and the first of
#: 2026-11-01, the day the clocks go back (25 hours: it ends at 05:00 UTC), then 2026-11-02, a plain day.
EDGES_MS = {
    "20261031": 1_793_505_599_999,
    "20261101": 1_793_505_600_000,
    "20261101 late": 1_793_595_599_999,
    "20261102": 1_793_595_600_000,
}
#: Partition of a row: its table's, for its New York date (a day's, or equity_bars' month's: sql/031).
IN_ITS_PARTITION = ("SELECT count(*) FILTER (WHERE tableoid::regclass::text = 'streaming_partitions.'"
                    " || (public.partition_span('{table}', (timestamp AT TIME ZONE 'America/New_York')::date)).name),"
                    " count(*) FROM public.{table}")
#: The same before 031, when every table had a partition a day.
IN_ITS_DAY = ("SELECT count(*) FILTER (WHERE tableoid::regclass::text = 'streaming_partitions.{table}_'"
              " || to_char((timestamp AT TIME ZONE 'America/New_York')::date, 'YYYYMMDD')), count(*)"
              " FROM public.{table}")


def partitions(conn: psycopg.Connection, table: str) -> list[str]:
    return [name for (name,) in conn.execute(
        "SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid"
        " WHERE i.inhparent = %s::regclass ORDER BY 1", (f"public.{table}",))]


def records(ms: int, n: int) -> dict[str, list[tuple]]:
    """One row of every stored table at `ms` (n tells rows of one instant apart)."""
    made = {
        "equity_data": EquityTrade("SPY", ms, 417.09, 100, 1_000 + n, 100, 417.08, 417.1, ms * 1_000_000),
        "index_levels": IndexLevel("$SPX", ms, 6001.25 + n, ms * 1_000_000),
        "indicators": IndicatorValue("SPY", ms, 1_000 + n, 417.09, 417.05, 416.98, ms * 1_000_000),
        "option_prices": OptionRow("SPY", "SPY   261124C00417000", ms, "C", 417.0 + n, "2026-11-24", 1.23, 1.2,
                                   1.25, 1.22, 10, 100, 0.5, 0.04, -0.1, 0.07, 0.01, 0.18, 417.09, "schwab",
                                   ms * 1_000_000),
        "equity_bars": MinuteBar("SPY", ms - ms % 60_000, 417.1, 417.4, 417.0, 417.25, 1_000.0, n,
                                 ms * 1_000_000),
        "equity_quotes": EquityQuote("SPY", ms, 417.08, 417.1, 3, n, ms * 1_000_000),
        "streaming_metrics": StreamingMetric(ms * 1_000_000 + n, "writer", None, 5, 5, 1, 0, 0, "running"),
        "stream_metrics": StreamLag(ms * 1_000_000 + n, "test/ingest/trade", 1, 5, 5, 0, 0.0),
    }
    return {table: [msgspec.structs.astuple(record)] for table, record in made.items()}


def write(conn: psycopg.Connection, *instants: int, tables: tuple[str, ...] = TABLES) -> None:
    batches: dict[str, list[tuple]] = {table: [] for table in tables}
    for n, ms in enumerate(instants):
        for table, rows in records(ms, n).items():
            if table in tables:
                batches[table] += rows
    assert db.write_batches(conn, batches) == dict.fromkeys(tables, len(instants))


def test_rows_land_in_their_new_york_days_partition_made_when_a_batch_needs_it(migrated_url):
    conn = db.connect(migrated_url)
    try:
        assert not any("20261101" in name for name in partitions(conn, "equity_data")), "none that far back yet"
        write(conn, *EDGES_MS.values())
        for table in TABLES:
            assert conn.execute(IN_ITS_PARTITION.format(table=table)).fetchone() == (4, 4), table
            spans = {name.rpartition("_")[2] for name in partitions(conn, table)}
            assert ({"202610", "202611"} if table == "equity_bars" else {"20261031", "20261101", "20261102"}) <= spans
        bounds = conn.execute("SELECT pg_get_expr(relpartbound, oid) FROM pg_class"
                              " WHERE relname = 'equity_data_20261101'").fetchone()[0]
        assert bounds == "FOR VALUES FROM ('2026-11-01 04:00:00+00') TO ('2026-11-02 05:00:00+00')", "25 hours"
        # A batch for one table makes that table's partitions only.
        db.write_batches(conn, {"equity_data": records(1_700_000_000_000, 0)["equity_data"]})
        assert "equity_data_20231114" in partitions(conn, "equity_data")
        assert "indicators_20231114" not in partitions(conn, "indicators")
    finally:
        conn.close()


def test_create_partitions_refuses_what_it_cannot_mean(migrated_url):
    with psycopg.connect(migrated_url, autocommit=True) as conn:
        # Two days of seven tables partitioned by the day, one month of equity_bars.
        assert conn.execute("SELECT create_partitions('2026-01-05', '2026-01-06')").fetchone() == (15,)
        assert conn.execute("SELECT create_partitions('2026-01-05', '2026-01-06')").fetchone() == (0,), "once"
        # Yesterday to a week ahead of every table, as the writer and pg_cron ask: 9 days of 8 tables, but only what
        # is missing counts against the 64 a call.
        assert conn.execute("SELECT create_partitions('2026-01-04', '2026-01-12')").fetchone() == (49,)
        for call, reason in (("'2026-02-01', '2026-02-10'", "at most 64 partitions a call.*not the 71 that"),
                             ("'2026-03-01', '2026-05-04', 'indicators'", "not the 65 that 2026-03-01 to 2026-05-04 lack"),
                             ("'2026-01-01', '2027-01-05', 'equity_bars'", "at most 366 days apart"),
                             ("'2026-01-06', '2026-01-05'", "a first and a last day, in order"),
                             ("NULL, '2026-01-05'", "a first and a last day, in order"),
                             ("'2026-01-05', '2026-01-05', 'stream_offsets'", "not a partitioned table")):
            with pytest.raises(psycopg.errors.RaiseException, match=reason):
                conn.execute(f"SELECT create_partitions({call})")
        assert conn.execute("SELECT count(*) FROM missing_partitions('2026-02-01', '2026-02-10')").fetchone() == (71,)


def test_retention_drops_the_archived_days_past_it_and_nothing_else(migrated_url, tmp_path):
    now = datetime.now(NEW_YORK)
    ages = (45, 31, 29, 0)  # days back, at New York noon
    instants = [int((now - timedelta(days=age)).replace(hour=12, minute=0, second=0, microsecond=0).timestamp()
                    * 1000) for age in ages]
    conn = db.connect(migrated_url)
    try:
        write(conn, *instants)
        conn.execute("INSERT INTO stream_offsets (consumer, stream, epoch, seq) VALUES ('writer', 'x', 1, 1)")
        before = {table: partitions(conn, table) for table in TABLES}
        assert dict(conn.execute("SELECT * FROM cleanup_old_equity_data(30)").fetchall()) == dict.fromkeys(
            set(TABLES) - {"equity_bars"}, 0), "nothing is dropped that is not archived"
        archive_days_before(conn, now.date(), tmp_path)
        deleted = dict(conn.execute("SELECT * FROM cleanup_old_equity_data(30)").fetchall())
        assert deleted == dict.fromkeys(set(TABLES) - {"equity_bars"}, 2), "the 45 and 31 days old rows"
        gone = {(now - timedelta(days=age)).strftime("%Y%m%d") for age in (45, 31)}
        for table in TABLES:
            after = partitions(conn, table)
            expected = before[table] if table == "equity_bars" else [
                name for name in before[table] if name[-8:] not in gone]
            assert after == expected, table
            left = conn.execute(f"SELECT count(*) FROM {table}").fetchone()[0]
            assert left == (4 if table == "equity_bars" else 2), table
        assert conn.execute("SELECT count(*) FROM stream_offsets").fetchone() == (1,)
        assert dict(conn.execute("SELECT * FROM cleanup_old_equity_data(30)").fetchall()) == dict.fromkeys(
            deleted, 0), "twice is once"
    finally:
        conn.close()


def snapshot(conn: psycopg.Connection) -> dict[str, object]:
    """Every row of every table (ids included), the statistics view, and who may do what on each table."""
    state: dict[str, object] = {}
    for table in (*OLD_TABLES, "stream_offsets", "equity_data_stats"):
        order = {"equity_data_stats": "ticker, trade_date", "stream_offsets": "consumer, stream"}.get(table, "id")
        state[table] = conn.execute(
            f"SELECT count(*), md5(coalesce(string_agg(r::text, '|' ORDER BY r.{order.replace(', ', ', r.')}), ''))"
            f" FROM public.{table} AS r").fetchone()
        state[f"{table} grants"] = conn.execute(
            "SELECT array_agg(format('%%s %%s', a.grantee::regrole, a.privilege_type)"
            "                 ORDER BY a.grantee::regrole::text, a.privilege_type)"
            " FROM pg_class c, aclexplode(c.relacl) a WHERE c.oid = %s::regclass", (f"public.{table}",)).fetchone()
    state["policies"] = conn.execute(  # of these tables: a later migration may add tables of its own
        "SELECT json_agg(p ORDER BY p.tablename, p.policyname) FROM pg_policies p WHERE p.schemaname = 'public'"
        " AND p.tablename = ANY(%s)", ([*OLD_TABLES, "stream_offsets"],)).fetchone()
    state["public read"] = conn.execute("SELECT public_read_enabled()").fetchone()
    return state


@pytest.fixture
def old_schema_url(db_url: str, tmp_path: Path) -> str:
    """A database migrated as it was before the partitions: 001-021."""
    with migrate.connect(db_url) as owner:
        migrate.migrate(owner, sql_before(tmp_path, before="022"))
    return db_url


def test_a_database_filled_under_the_old_schema_keeps_every_row_through_make_migrate(old_schema_url, tmp_path):
    conn = db.connect(old_schema_url)
    try:
        # Today's writer skips a quote stored before by its key (030) and writes 033's and 034's columns: the old
        # tables get them first, and the upgrade carries them over as it does every key and column.
        for later in ("030_quote_key.sql", *TODAYS_COLUMNS):
            conn.execute(migrate.SQL_DIR.joinpath(later).read_text())
        while conn.execute("SELECT quote_key_step()").fetchone()[0]:
            pass
        write(conn, *EDGES_MS.values(), *(EDGES_MS["20261102"] + k * 3_600_000 for k in range(1, 30)), tables=OLD_TABLES)
        conn.execute("INSERT INTO equity_data (ticker, timestamp, price, volume)"  # the seed's hand insert
                     " VALUES ('QQQ', '2026-11-02 15:00:00+00', 510.5, 7)")
        conn.execute("INSERT INTO stream_offsets (consumer, stream, epoch, seq) VALUES ('writer', 'x', 1, 9)")
        conn.execute("SELECT refresh_equity_stats()")
        conn.execute("SELECT set_public_read(true)")
        conn.execute("CREATE PUBLICATION supabase_realtime")
        conn.execute("SELECT set_realtime(true)")
        assert conn.execute("SELECT count(*) FROM pg_partitioned_table").fetchone() == (0,), "the old schema"
        before = snapshot(conn)
        last_id = conn.execute("SELECT max(id) FROM equity_data").fetchone()[0]
    finally:
        conn.close()

    # Up to the market-read switch (028), which closes authenticated's open read on purpose (test_rls).
    upgrade = sql_before(tmp_path, before="028")
    with migrate.connect(old_schema_url) as owner:
        applied = [m.version for m, done in migrate.migrate(owner, upgrade) if done]
    assert applied[0] == "022"
    conn = db.connect(old_schema_url)
    try:
        assert snapshot(conn) == before, "every row, id, grant and policy as it was"
        for table in OLD_TABLES:
            assert conn.execute("SELECT relkind FROM pg_class WHERE oid = %s::regclass",
                                (f"public.{table}",)).fetchone() == ("p",), table
            stored, total = conn.execute(IN_ITS_DAY.format(table=table)).fetchone()
            assert stored == total > 0, table
        write(conn, EDGES_MS["20261102"] + 31 * 3_600_000, tables=OLD_TABLES)
        assert conn.execute("SELECT max(id) FROM equity_data").fetchone()[0] == last_id + 1, "ids go on"
        assert conn.execute("SELECT to_regclass('public.equity_data_unpartitioned')").fetchone() == (None,)
        assert conn.execute("SELECT array_agg(tablename::text ORDER BY tablename), bool_and(pubviaroot)"
                            " FROM pg_publication_tables JOIN pg_publication USING (pubname)"
                            " WHERE pubname = 'supabase_realtime'").fetchone() == (["equity_bars", "indicators"],
                                                                                   True), "Realtime kept"
    finally:
        conn.close()


def test_a_view_of_the_users_stops_the_upgrade_before_it_changes_anything(old_schema_url):
    with migrate.connect(old_schema_url) as owner:
        owner.execute("CREATE VIEW my_spy AS SELECT * FROM equity_data WHERE ticker = 'SPY'")
        with pytest.raises(psycopg.errors.RaiseException, match=r"view public\.my_spy \(on public\.equity_data\)"):
            migrate.migrate(owner)
        assert owner.execute("SELECT count(*) FROM pg_partitioned_table").fetchone() == (0,), "nothing changed"
        assert owner.execute("SELECT max(version) FROM schema_migrations").fetchone() == ("021",)


def test_a_year_of_history_upgrades_in_steps_at_the_default_lock_table(old_schema_url):
    """One transaction for a year of partitions (13 locks each) ran out of shared memory at six months of the seven
    tables; in steps (14 days of one table, one index change), the default 64 locks per connection (here 40
    connections: 2,560 in all) hold. Steps are per table: a year of one table is already 4,800 locks in one
    transaction, and a year in all seven would only take the test longer."""
    yearly = ("equity_data",)
    noon = EDGES_MS["20261102"] + 17 * 3_600_000
    conn = db.connect(old_schema_url)
    try:
        assert conn.execute("SELECT current_setting('max_locks_per_transaction')").fetchone() == ("64",)
        for later in ("030_quote_key.sql", *TODAYS_COLUMNS):
            conn.execute(migrate.SQL_DIR.joinpath(later).read_text())
        while conn.execute("SELECT quote_key_step()").fetchone()[0]:
            pass
        batches: dict[str, list[tuple]] = {table: [] for table in yearly}
        for day in range(366):
            for table in yearly:
                batches[table] += records(noon - day * 86_400_000, day)[table]
        assert db.write_batches(conn, batches) == dict.fromkeys(yearly, 366)
    finally:
        conn.close()
    with migrate.connect(old_schema_url) as owner:
        assert "022" in [m.version for m, done in migrate.migrate(owner) if done]
        for table in yearly:
            stored, total = owner.execute(IN_ITS_PARTITION.format(table=table)).fetchone()
            assert stored == total == 366, table
            assert len(partitions(owner, table)) >= 366, table
        assert owner.execute("SELECT count(*) FROM partition_upgrade").fetchone() == (0,), "every table finished"


def test_what_the_upgrade_would_not_carry_over_stops_it_named_before_anything_changes(old_schema_url):
    with migrate.connect(old_schema_url) as owner:
        owner.execute("CREATE FUNCTION mine() RETURNS trigger LANGUAGE plpgsql AS 'BEGIN RETURN NEW; END'")
        owner.execute("CREATE TRIGGER audit BEFORE INSERT ON equity_data FOR EACH ROW EXECUTE FUNCTION mine()")
        owner.execute("ALTER TABLE equity_bars REPLICA IDENTITY FULL")
        owner.execute("ALTER TABLE indicators SET (fillfactor = 90)")
        owner.execute("CREATE TABLE my_fills (trade bigint REFERENCES equity_data (id))")
        with pytest.raises(psycopg.errors.RaiseException) as refused:
            migrate.migrate(owner)
        said = str(refused.value)
        for what in ("trigger audit on public.equity_data", "REPLICA IDENTITY FULL on public.equity_bars",
                     "storage parameters (fillfactor=90) on public.indicators",
                     "foreign key my_fills_trade_fkey of public.my_fills"):
            assert what in said, (what, said)
        assert owner.execute("SELECT count(*) FROM pg_partitioned_table").fetchone() == (0,), "nothing changed"
        assert owner.execute("SELECT max(version) FROM schema_migrations").fetchone() == ("021",)


def plan(conn: psycopg.Connection, query: str) -> list[dict]:
    """Every node of the plan of `query`, flattened."""
    nodes, pending = [], [json.loads(json.dumps(conn.execute(f"EXPLAIN (FORMAT JSON) {query}").fetchone()[0]))[0]
                          ["Plan"]]
    while pending:
        node = pending.pop()
        nodes.append(node)
        pending += node.get("Plans", [])
    return nodes


def test_a_ticker_and_time_range_is_read_by_index_from_the_days_it_touches(migrated_url):
    with psycopg.connect(migrated_url, autocommit=True) as conn:
        conn.execute("SELECT create_partitions('2026-11-16', '2026-11-18')")
        # Three sessions of 40 tickers, a trade a second for an hour and a half each: 648,000 rows.
        conn.execute("INSERT INTO equity_data (ticker, timestamp, price, volume, day_volume)"
                     " SELECT 'T' || t, d + interval '14 hours 30 minutes' + s * interval '1 second', 100 + t, 1, s"
                     " FROM generate_series(timestamptz '2026-11-16', '2026-11-18', '1 day') AS d,"
                     "      generate_series(1, 40) AS t, generate_series(1, 5400) AS s")
        conn.execute("ANALYZE equity_data")
        one_day = plan(conn, "SELECT * FROM equity_data WHERE ticker = 'T7'"
                             " AND timestamp >= '2026-11-17 15:00+00' AND timestamp < '2026-11-17 15:30+00'")
        two_days = plan(conn, "SELECT * FROM equity_data WHERE ticker = 'T7'"
                              " AND timestamp >= '2026-11-17 15:00+00' AND timestamp < '2026-11-18 15:30+00'")
    for nodes, days in ((one_day, {"20261117"}), (two_days, {"20261117", "20261118"})):
        scans = [node for node in nodes if "Relation Name" in node]
        assert {node["Relation Name"][-8:] for node in scans} == days, "only the partitions the range touches"
        assert {node["Node Type"] for node in scans} <= {"Index Scan", "Bitmap Heap Scan", "Index Only Scan"}
        indexes = {node["Index Name"] for node in nodes if "Index Name" in node}
        assert indexes and all("ticker_timestamp" in name for name in indexes), indexes


@pytest.mark.parametrize("role", ["anon", "authenticated", "service_role"])
def test_no_api_role_touches_a_partition_directly(migrated_url, role):
    """Not even with public read on, nor service_role (BYPASSRLS on Supabase); the writer's role:
    test_supabase_roles."""
    with psycopg.connect(migrated_url, autocommit=True) as conn:
        conn.execute("SELECT set_market_read(ARRAY['anon', 'authenticated'])")
        day = conn.execute("SELECT max(relname) FROM pg_class WHERE relkind = 'r'"
                           " AND relnamespace = 'streaming_partitions'::regnamespace"
                           " AND relname LIKE 'equity_data%'").fetchone()[0]
        conn.execute(f"SET ROLE {role}")
        conn.execute("SELECT count(*) FROM public.equity_data")  # through the parent, as its grants say
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            conn.execute(f"SELECT * FROM streaming_partitions.{day}")
        if role in ("anon", "authenticated"):
            with pytest.raises(psycopg.errors.InsufficientPrivilege):
                conn.execute("SELECT create_partitions(current_date, current_date)")
