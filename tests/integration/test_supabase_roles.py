"""The dedicated writer role, and the pg_cron schedule, as a Supabase project would have them."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import tempfile
from decimal import Decimal
from pathlib import Path

import msgspec
import psycopg
import pytest

from common.config import load
from common.store import db, migrate
from common.store.localpg import SUPERUSER, LocalPostgres
from common.transport.bus import Publisher
from common.transport.messages import IndexLevel, IndicatorValue, MinuteBar
from tests.helpers.harness import wait_for
from tests.helpers.roles import writer_login
from tests.helpers.writer_process import T0, await_writer, trade, writer_process

DENIED = psycopg.errors.InsufficientPrivilege


@pytest.fixture
def writer_url(migrated_url: str) -> str:
    return writer_login(migrated_url)


def test_the_writer_runs_as_the_writer_role(writer_url, migrated_url, tmp_path):
    var = Path(tempfile.mkdtemp(prefix="wr", dir="/tmp"))
    try:
        env = {**os.environ, "STREAMING_VAR": str(var), "DATABASE_URL": writer_url, "STREAM_SOURCE": "simulator",
               "HEARTBEAT_INTERVAL": "0.2s"}
        config = load(env)
        config.ensure_dirs()
        ingest, indicator = Publisher(config, "ingest"), Publisher(config, "indicator")
        week = "to_char((now() AT TIME ZONE 'America/New_York')::date + 7, 'YYYYMMDD')"
        with psycopg.connect(migrated_url, autocommit=True) as owner:  # the migration's week ahead, taken away
            owner.execute(f"DO $$ BEGIN EXECUTE 'DROP TABLE IF EXISTS streaming_partitions.equity_data_' || {week};"
                          " END $$")
        with writer_process(env, var) as writer:
            await_writer(ingest, indicator)
            with psycopg.connect(migrated_url, autocommit=True) as owner:
                wait_for(lambda: owner.execute(f"SELECT to_regclass('streaming_partitions.equity_data_' || {week})"
                                               ).fetchone()[0] is not None, 30, "the partitions a week ahead")
            ingest.send([trade(i, T0 + i) for i in range(10)])
            ingest.send([IndexLevel("$SPX", T0, 6001.25, 1)])  # an index's table (032) and its SMA9 with no VWAP
            indicator.send([IndicatorValue("SPY", T0, 1000, 500.0, None, 500.0, 1),
                            IndicatorValue("$SPX", T0, 0, 6001.25, None, None, 1)])
            with psycopg.connect(migrated_url) as conn:
                wait_for(lambda: conn.execute("SELECT (SELECT count(*) FROM equity_data),"
                                              " (SELECT count(*) FROM indicators),"
                                              " (SELECT count(*) FROM index_levels)").fetchone() == (10, 2, 1),
                         30, "the rows stored by the writer role")
            ingest.close()
            indicator.close()
            writer.send_signal(signal.SIGTERM)
            assert writer.wait(timeout=20) == 0, (var / "writer.log").read_text()
        with psycopg.connect(migrated_url) as conn:
            assert conn.execute("SELECT count(*) FROM equity_data").fetchone()[0] == 10
            assert conn.execute("SELECT count(*) FROM indicators").fetchone()[0] == 2
            assert conn.execute("SELECT count(*) FROM stream_offsets WHERE consumer = 'writer'").fetchone()[0] == 3
    finally:
        shutil.rmtree(var, ignore_errors=True)


def test_the_writer_role_can_only_insert_and_read_its_tables(writer_url):
    with psycopg.connect(writer_url, autocommit=True) as conn:
        conn.execute("INSERT INTO equity_data (ticker, timestamp, price, volume, day_volume)"
                     " VALUES ('SPY', now(), 500, 1, 1)")
        assert conn.execute("SELECT count(*) FROM equity_data").fetchone()[0] == 1
        conn.execute("INSERT INTO stream_offsets (consumer, stream, epoch, seq) VALUES ('writer', 'x', 1, 1)")
        assert conn.execute("UPDATE stream_offsets SET seq = 2 WHERE consumer = 'writer'").rowcount == 1
        for statement in ("UPDATE equity_data SET price = 1", "DELETE FROM equity_data", "TRUNCATE equity_data",
                          "DELETE FROM stream_offsets", "SELECT * FROM schema_migrations",
                          "SELECT * FROM cleanup_old_equity_data(1)", "SELECT refresh_equity_stats()",
                          "INSERT INTO stream_offsets (consumer, stream, epoch, seq) VALUES ('indicator', 'y', 1, 1)"
                          " ON CONFLICT (consumer, stream) DO UPDATE SET seq = 9",
                          "CREATE TABLE public.mine (id int)",
                          # The bar rollups are the triggers' business (sql/024), not the writer's.
                          "SELECT * FROM equity_bar_rollups", "DELETE FROM equity_bar_rollups",
                          "SELECT equity_bar_rollups_rebuild()",
                          # A day's partition directly: neither read nor dropped, not even today's (sql/022).
                          "DO $$ BEGIN EXECUTE 'SELECT count(*) FROM streaming_partitions.equity_data_'"
                          " || to_char((now() AT TIME ZONE 'America/New_York')::date, 'YYYYMMDD'); END $$",
                          "DROP TABLE streaming_partitions.equity_data_20261101"):
            with pytest.raises((DENIED, psycopg.errors.InvalidAuthorizationSpecification)):
                conn.execute(statement)
        assert conn.execute("SELECT price FROM equity_data").fetchone()[0] == 500


def test_the_writer_role_is_untouched_by_private_reads_and_the_public_read_switch(writer_url, migrated_url):
    """010 took the internal tables from the API roles, not from the writer; the switch is not the writer's."""
    with psycopg.connect(migrated_url, autocommit=True) as owner:
        owner.execute("SELECT public.set_public_read(true)")
    with psycopg.connect(writer_url, autocommit=True) as conn:
        conn.execute("INSERT INTO streaming_metrics (timestamp, actor, service_status, source)"
                     " VALUES (now(), 'writer', 'running', 'simulator')")
        conn.execute("INSERT INTO stream_metrics (timestamp, stream, epoch, published_seq, committed_seq,"
                     " lag_records, lag_seconds) VALUES (now(), 'ingest/trade/SPY', 1, 2, 2, 0, 0)")
        conn.execute("INSERT INTO stream_offsets (consumer, stream, epoch, seq) VALUES ('writer', 'x', 1, 1)")
        for table in ("equity_data", "indicators", "option_prices", "streaming_metrics", "stream_metrics",
                      "stream_offsets"):
            conn.execute(f"SELECT * FROM {table}").fetchall()
        for statement in ("SELECT public.set_public_read(false)", "SELECT public.public_read_enabled()",
                          "DELETE FROM stream_metrics", "SELECT * FROM cleanup_old_equity_data(1)"):
            with pytest.raises(DENIED):
                conn.execute(statement)
    with psycopg.connect(migrated_url, autocommit=True) as owner:
        assert owner.execute("SELECT public.public_read_enabled()").fetchone() == (True,)


def test_the_writer_role_revises_a_bar_and_deletes_none(writer_url, migrated_url):
    """Its one UPDATE: a bar Schwab sent again with new values replaces the stored one (017)."""
    bar = MinuteBar("SPY", T0, 417.1, 417.4, 417.0, 417.25, 1000.0, 1, T0 * 1_000_000)
    connection = db.connect(writer_url)
    try:
        assert db.write_batches(connection, {"equity_bars": [msgspec.structs.astuple(bar)]}) == {"equity_bars": 1}
        revised = msgspec.structs.replace(bar, close=417.3, chart_sequence=2)
        assert db.write_batches(connection, {"equity_bars": [msgspec.structs.astuple(revised)]}) == {
            "equity_bars": 1}
        assert connection.execute("SELECT close FROM equity_bars").fetchone()[0] == Decimal("417.300000")
        with psycopg.connect(migrated_url) as owner:  # and its rollups with it, through the triggers (sql/024)
            assert owner.execute("SELECT DISTINCT close FROM equity_bar_rollups").fetchall() == [
                (Decimal("417.300000"),)]
        for statement in ("DELETE FROM equity_bars", "TRUNCATE equity_bars", "UPDATE equity_data SET price = 1"):
            with pytest.raises(DENIED):
                connection.execute(statement)
    finally:
        connection.close()


def install_pg_cron() -> None:
    """pg_cron from the OS packages, as Supabase ships it; the test set-up installs it when missing."""
    version = LocalPostgres(Path("/nonexistent")).bindir.parent.name
    library = Path(f"/usr/lib/postgresql/{version}/lib/pg_cron.so")
    if library.exists():
        return
    if os.geteuid() != 0:
        pytest.fail(f"pg_cron is not installed ({library}); install postgresql-{version}-cron")
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    install = ["apt-get", "install", "-y", "-q", f"postgresql-{version}-cron"]
    if subprocess.run(install, env=env, capture_output=True, timeout=600).returncode != 0:
        subprocess.run(["apt-get", "update", "-q"], env=env, check=True, capture_output=True, timeout=600)
        subprocess.run(install, env=env, check=True, capture_output=True, timeout=600)


@pytest.fixture(scope="module")
def cron_cluster():
    """A cluster with pg_cron preloaded, the extension created by the superuser as Supabase's dashboard does."""
    install_pg_cron()
    base = Path(tempfile.mkdtemp(prefix="pgcron", dir="/tmp"))
    base.chmod(0o755)
    cluster = LocalPostgres(base / "pg")
    cluster.init()
    with (cluster.data_dir / "postgresql.conf").open("a") as conf:
        conf.write("shared_preload_libraries = 'pg_cron'\ncron.database_name = 'streaming'\n")
    cluster.start()
    try:
        with psycopg.connect(cluster.url(SUPERUSER), autocommit=True) as admin:
            admin.execute("CREATE EXTENSION IF NOT EXISTS pg_cron")
            admin.execute("GRANT USAGE ON SCHEMA cron TO postgres")
        yield cluster
    finally:
        cluster.stop()
        shutil.rmtree(base, ignore_errors=True)


def test_with_pg_cron_the_refresh_and_the_cleanup_are_scheduled_once(cron_cluster):
    with migrate.connect(cron_cluster.url()) as conn:
        migrate.migrate(conn)
    sql = Path(__file__).resolve().parents[2] / "sql"
    with psycopg.connect(cron_cluster.url(), autocommit=True) as conn:
        # 008 and 022 schedule the jobs: applied again, still one job each. And the files after 022, as the
        # runner would apply them after it: they replace functions 022 defines (031: create_partitions).
        for schedule in ["008_pg_cron.sql", *sorted(path.name for path in sql.glob("*.sql") if path.name >= "022")]:
            conn.execute((sql / schedule).read_text())
        jobs = conn.execute("SELECT jobname, schedule, command, username FROM cron.job ORDER BY jobname").fetchall()
        for *_, command, _ in jobs:
            conn.execute(command)  # each runs as written
        ahead = conn.execute("SELECT max(relname) FROM pg_class WHERE relkind = 'r'"
                             " AND relnamespace = 'streaming_partitions'::regnamespace AND relname LIKE 'equity_data%'"
                             ).fetchone()[0]
        week = conn.execute("SELECT to_char(current_date + 7, 'YYYYMMDD')").fetchone()[0]
    assert jobs == [
        ("streaming-create-partitions", "15 3 * * *",
         "SELECT public.create_partitions(current_date - 1, current_date + 7)", "postgres"),
        ("streaming-refresh-equity-stats", "*/5 * * * *", "SELECT public.refresh_equity_stats()", "postgres"),
        ("streaming-retention-cleanup", "30 3 * * *", "SELECT public.cleanup_old_equity_data(30)", "postgres"),
    ]
    assert ahead == f"equity_data_{week}", "the partitions a week ahead"


def test_without_pg_cron_the_migration_changes_nothing(migrated_url):
    with psycopg.connect(migrated_url) as conn:
        assert conn.execute("SELECT count(*) FROM pg_extension WHERE extname = 'pg_cron'").fetchone()[0] == 0
        applied = [row[0] for row in conn.execute("SELECT version FROM schema_migrations")]
        assert any(version.startswith("008") for version in applied), applied

