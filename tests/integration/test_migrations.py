"""The migration runner, against a real Postgres, as the non-superuser `postgres`."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import threading
from pathlib import Path

import psycopg
import pytest

from common.store import migrate
from tests.helpers.harness import ROOT
from tests.helpers.roles import as_user, writer_login

TABLES = ("equity_data", "indicators", "option_prices", "streaming_metrics", "stream_metrics", "stream_offsets")
FUNCTIONS = ("get_streaming_health(text)", "cleanup_old_equity_data(integer)", "refresh_equity_stats()",
             "set_public_read(boolean)", "public_read_enabled()")


def versions(url: str) -> list[str]:
    with psycopg.connect(url) as conn:
        return [row[0] for row in conn.execute("SELECT version FROM schema_migrations ORDER BY version")]


def test_second_run_applies_nothing(db_url):
    with migrate.connect(db_url) as conn:
        first = migrate.migrate(conn)
        second = migrate.migrate(conn)
    assert [applied for _, applied in first] == [True] * len(first)
    assert [m.path.name for m, _ in first][:3] == ["001_tables.sql", "002_stats_and_functions.sql", "003_security.sql"]
    assert [applied for _, applied in second] == [False] * len(second)
    assert versions(db_url) == [m.version for m, _ in first]


def test_cli_prints_one_line_per_migration(db_url, capsys, monkeypatch):
    monkeypatch.setenv("DATABASE_URL", db_url)
    monkeypatch.delenv("MIGRATE_DATABASE_URL", raising=False)
    migrate.main([])
    migrate.main([])
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == "001_tables.sql: applied"
    assert lines[len(lines) // 2] == "001_tables.sql: already applied"


def test_the_cli_migrates_migrate_database_url_over_database_url(db_url, capsys, monkeypatch):
    monkeypatch.setenv("DATABASE_URL", "postgresql://streaming_ingest@/nowhere?host=/nonexistent")
    monkeypatch.setenv("MIGRATE_DATABASE_URL", db_url)
    migrate.main([])
    assert capsys.readouterr().out.splitlines()[0] == "001_tables.sql: applied"


def test_the_cli_refuses_an_unreadable_url_without_showing_its_password(monkeypatch):
    monkeypatch.setenv("DATABASE_URL", "postgresql://owner:pa%zz w0rd@db.example/postgres")
    with pytest.raises(SystemExit) as refused:
        migrate.main([])
    assert "DATABASE_URL" in str(refused.value) and "pa%zz" not in str(refused.value), refused.value


def test_changed_file_is_refused_and_nothing_after_it_applied(db_url, tmp_path: Path):
    sql_dir = tmp_path / "sql"
    shutil.copytree(migrate.SQL_DIR, sql_dir)
    with migrate.connect(db_url) as conn:
        migrate.migrate(conn, sql_dir)
        with (sql_dir / "002_stats_and_functions.sql").open("a") as changed:
            changed.write("\n-- an afterthought\n")
        (sql_dir / "900_later.sql").write_text("CREATE TABLE later (id int);")
        with pytest.raises(migrate.MigrationError, match="002_stats_and_functions.sql changed"):
            migrate.migrate(conn, sql_dir)
    assert "900" not in versions(db_url)


def test_concurrent_runners_apply_each_file_once(db_url):
    results: list[list[bool]] = []

    def run() -> None:
        with migrate.connect(db_url) as conn:
            results.append([applied for _, applied in migrate.migrate(conn)])

    threads = [threading.Thread(target=run) for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(results) == 3
    assert [sum(column) for column in zip(*results)] == [1] * len(results[0])


def test_objects_exist_and_belong_to_the_non_superuser(migrated_url):
    with psycopg.connect(migrated_url) as conn:
        assert conn.execute("SELECT current_user, rolsuper FROM pg_roles WHERE rolname = current_user").fetchone() == (
            "postgres",
            False,
        )
        for table in TABLES:
            owner, rls = conn.execute(
                "SELECT relowner::regrole::text, relrowsecurity FROM pg_class WHERE oid = to_regclass(%s)", (table,)
            ).fetchone()
            assert (owner, rls) == ("postgres", True), table
        assert conn.execute("SELECT relkind FROM pg_class WHERE oid = to_regclass('equity_data_stats')").fetchone() == (
            "m",
        )
        for function in FUNCTIONS:
            assert conn.execute("SELECT to_regprocedure(%s)", (function,)).fetchone()[0] is not None, function


def test_tables_of_the_older_layout_are_refused(db_url):
    with psycopg.connect(db_url, autocommit=True) as conn:
        conn.execute("CREATE TABLE equity_data (ticker varchar(10), timestamp timestamptz, price decimal(10,2))")
        with pytest.raises(psycopg.errors.RaiseException, match="older layout"):
            migrate.migrate(conn)


def test_the_later_migrations_applied_twice_change_nothing(migrated_url):
    """Each is written to be idempotent, like 001-008, though the runner applies it once."""
    catalog = {
        "columns": "SELECT format('%s.%s %s', c.relname, a.attname, a.attnotnull) FROM pg_attribute a"
                   " JOIN pg_class c ON c.oid = a.attrelid WHERE c.relnamespace = 'public'::regnamespace"
                   " AND c.relkind = 'r' AND a.attnum > 0 AND NOT a.attisdropped",
        "constraints": "SELECT format('%s %s', conname, pg_get_constraintdef(oid)) FROM pg_constraint"
                       " WHERE connamespace = 'public'::regnamespace",
        "policies": "SELECT format('%s %s %s %s', tablename, policyname, roles, cmd) FROM pg_policies"
                    " WHERE schemaname = 'public'",
        "privileges": "SELECT format('%s %s', relname, relacl) FROM pg_class"
                      " WHERE relnamespace = 'public'::regnamespace",
        "functions": "SELECT format('%s %s %s %s', oid::regprocedure, prosecdef, proconfig, proacl) FROM pg_proc"
                     " WHERE pronamespace = 'public'::regnamespace",
    }

    def state(conn: psycopg.Connection) -> dict[str, list[str]]:
        return {name: sorted(row[0] for row in conn.execute(query)) for name, query in catalog.items()}

    def apply_again(conn: psycopg.Connection, migration: migrate.Migration) -> None:
        """The file, and its steps to the end, as the runner applies them."""
        conn.execute(migration.sql)
        while migration.version in migrate.STEPS and conn.execute(migrate.STEPS[migration.version]).fetchone()[0]:
            pass

    later = [m for m in migrate.discover() if m.version >= "009"]
    assert later
    with psycopg.connect(migrated_url, autocommit=True) as conn:
        before = state(conn)
        for migration in later:
            apply_again(conn, migration)
        assert state(conn) == before
        for migration in later:  # and each alone, right after itself (an older one may replace a later function)
            apply_again(conn, migration)
            once = state(conn)
            apply_again(conn, migration)
            assert state(conn) == once, migration.path.name


def test_the_health_function_runs_as_its_owner_with_a_pinned_path(migrated_url):
    with psycopg.connect(migrated_url) as conn:
        rows = dict(conn.execute(
            "SELECT proname, ARRAY[prosecdef::text, proconfig::text] FROM pg_proc WHERE pronamespace = 'public'::regnamespace"
            " AND proname IN ('get_streaming_health', 'set_public_read', 'public_read_enabled')").fetchall())
    assert rows == {
        "get_streaming_health": ["true", '{"search_path=pg_catalog, pg_temp"}'],
        "set_public_read": ["false", '{"search_path=pg_catalog, pg_temp"}'],
        "public_read_enabled": ["false", '{"search_path=pg_catalog, pg_temp"}'],
    }


def test_metrics_rows_may_say_replay_and_nothing_unknown(migrated_url):
    insert = "INSERT INTO streaming_metrics (timestamp, actor, service_status, source) VALUES (now(), 'ingest', %s, %s)"
    with psycopg.connect(migrated_url, autocommit=True) as conn:
        conn.execute(insert, ("replay_done", "replay"))
        with pytest.raises(psycopg.errors.CheckViolation):
            conn.execute(insert, ("running", "tape"))
        assert conn.execute("SELECT source FROM get_streaming_health('SPY')").fetchone() == ("replay",)


def run_migrate_as(url: str) -> subprocess.CompletedProcess:
    """The migrations as every start path runs them (`make run`, the container's entry point, `make deploy`):
    the service's own DATABASE_URL, no MIGRATE_DATABASE_URL."""
    env = {key: value for key, value in os.environ.items() if key != "MIGRATE_DATABASE_URL"} | {"DATABASE_URL": url}
    return subprocess.run([sys.executable, "-m", "common.store.migrate"], env=env, cwd=ROOT, capture_output=True,
                          text=True, timeout=60)


def test_the_readmes_least_privilege_login_starts_when_everything_is_applied_and_says_what_to_run_when_not(
        migrated_url):
    login = writer_login(migrated_url)
    started = run_migrate_as(login)
    assert started.returncode == 0, started.stderr
    assert started.stdout.splitlines()[-1].endswith(": already applied") and "applied\n" not in started.stdout.replace(
        "already applied\n", "")
    with psycopg.connect(migrated_url, autocommit=True) as conn:  # a newer release ships a migration
        newest = conn.execute("DELETE FROM schema_migrations WHERE version = (SELECT max(version) FROM"
                              " schema_migrations) RETURNING version").fetchone()[0]
    refused = run_migrate_as(login)
    assert refused.returncode != 0 and refused.stderr.count("\n") == 1, refused.stderr
    assert f"{newest}_" in refused.stderr and "streaming_ingest may not apply them" in refused.stderr
    assert "make migrate" in refused.stderr and "MIGRATE_DATABASE_URL" in refused.stderr
    assert run_migrate_as(migrated_url).returncode == 0, "the owner applies it"
    assert run_migrate_as(login).returncode == 0


def test_a_login_that_may_not_even_read_what_is_applied_is_told_what_to_run(migrated_url):
    with psycopg.connect(migrated_url, autocommit=True) as conn:
        conn.execute("CREATE ROLE stranger LOGIN")
    refused = run_migrate_as(as_user(migrated_url, "stranger"))
    assert refused.returncode != 0 and "stranger may not change the schema nor read which migrations are applied" \
        in refused.stderr and "make migrate" in refused.stderr


def test_pending_says_what_a_start_would_apply_without_applying_it(db_url, tmp_path: Path, monkeypatch, capsys):
    with migrate.connect(db_url) as conn:
        assert len(migrate.pending(conn)) == len(migrate.discover()), "a new database: everything"
        migrate.migrate(conn)
        assert migrate.pending(conn) == []
    monkeypatch.setenv("DATABASE_URL", db_url)
    monkeypatch.delenv("MIGRATE_DATABASE_URL", raising=False)
    migrate.main(["--pending"])
    assert capsys.readouterr().out == "0\n"


def test_a_migration_waits_for_a_lock_no_longer_than_its_timeout_and_records_nothing(db_url, tmp_path: Path,
                                                                                    monkeypatch):
    """A dashboard's open transaction on a table must not queue every session behind the migration's lock."""
    sql_dir = tmp_path / "sql"
    shutil.copytree(migrate.SQL_DIR, sql_dir)
    with migrate.connect(db_url) as conn:
        migrate.migrate(conn, sql_dir)
    (sql_dir / "999_needs_the_table.sql").write_text("ALTER TABLE public.equity_data ADD COLUMN note text;")
    monkeypatch.setattr(migrate, "LOCK_TIMEOUT", "200ms")
    with psycopg.connect(db_url) as reader:
        reader.execute("SELECT count(*) FROM equity_data")  # its transaction stays open, holding the table
        with migrate.connect(db_url) as conn, pytest.raises(psycopg.errors.LockNotAvailable):
            migrate.migrate(conn, sql_dir)
        reader.rollback()
    assert "999" not in versions(db_url)
