"""Apply `sql/NNN_*.sql` in order, each once, each in its own transaction.

`schema_migrations` records what was applied and the file's checksum. A run
holds a session advisory lock from start to end, so two runners (`make run`
twice, or a deploy racing a restart) apply each file once. A file
edited after it was applied is refused rather than silently skipped: write a
new migration instead, or, for a revision that changes only how a migration
does its work and never what it leaves (022's upgrade, made to commit in
steps), list the checksums it had before in REVISED.

A migration too large for one transaction (022's upgrade of a year of
history: about nine locks per partition, thousands of partitions, against a
shared lock table of 64 per connection) defines a step function named in
STEPS: its file is applied in one transaction, then the function is called,
each call in a transaction of its own and doing a bounded part of the work,
until it returns false; only then is the migration recorded. A run stopped
half-way goes on from where it was the next time.

Every start path (`make run`, the container's entry point, `make deploy`)
migrates with the service's own URL, which on Supabase is a login that may
not change the schema (the README's `streaming_ingest`). Such a login
changes nothing: it reads what is applied through
`schema_migrations_applied()` (027) and, when everything is, goes on; when
something is not, it stops with one line saying to run `make migrate` with
the owner's URL in MIGRATE_DATABASE_URL.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import re
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import psycopg

from common.config import ConfigError, embedded_database_url
from common.environment import check_database_url
from common.store.connection import open_connection, reason

SQL_DIR = Path(__file__).resolve().parents[2] / "sql"
#: Arbitrary but fixed: the advisory lock every runner takes.
LOCK_KEY = 7_301_155_424_001
#: Checksums a migration had before a revision that changes only how it works, never what it leaves: accepted
#: as applied. 022: its upgrade moved into steps (issue 25: it ran out of shared memory on six months of history),
#: then its own call of create_partitions left to the steps (031 makes bars monthly, which 022's version cannot).
REVISED: dict[str, frozenset[str]] = {
    "022": frozenset({"358eda040310b0e89f4d36ed5adcebbeab8d1e79493c1a43bee166f25392c777",
                      "e76bfe0410db6dcd41a0095c8005435b327d3e9c06a7bcca8b0d1dc94a6131d6"}),
}
#: Per version, the SQL call that does one bounded step of the migration's work and says whether more is left.
STEPS: dict[str, str] = {"022": "SELECT public.partition_upgrade_step()", "023": "SELECT public.storage_index_step()",
                         "030": "SELECT public.quote_key_step()", "031": "SELECT public.bars_by_month_step()"}
_FILE = re.compile(r"^(\d{3})_[A-Za-z0-9_]+\.sql$")

_CREATE_TABLE = """
CREATE TABLE IF NOT EXISTS public.schema_migrations (
    version    text PRIMARY KEY,
    checksum   text NOT NULL,
    applied_at timestamptz NOT NULL DEFAULT now()
);
-- On Supabase, default privileges hand it to anon and the API exposes it:
-- take the privileges back and enable RLS with no policy.
ALTER TABLE public.schema_migrations ENABLE ROW LEVEL SECURITY;
REVOKE ALL ON TABLE public.schema_migrations FROM PUBLIC;
DO $$
DECLARE
    api_role text;
BEGIN
    FOR api_role IN SELECT rolname FROM pg_roles WHERE rolname IN ('anon', 'authenticated', 'service_role') LOOP
        EXECUTE format('REVOKE ALL ON TABLE public.schema_migrations FROM %I', api_role);
    END LOOP;
END $$;
"""


class MigrationError(RuntimeError):
    """A migration cannot be applied safely; the message says why."""


@dataclass(frozen=True)
class Migration:
    version: str
    path: Path
    sql: str
    checksum: str

    def applied_as(self, checksum: str) -> bool:
        """Whether a database that recorded `checksum` for this version has what this file leaves."""
        return checksum == self.checksum or checksum in REVISED.get(self.version, frozenset())


def discover(sql_dir: Path = SQL_DIR) -> list[Migration]:
    """The migrations in `sql_dir`, ordered by their NNN prefix, which is their version."""
    migrations: dict[str, Migration] = {}
    for path in sorted(sql_dir.glob("*.sql")):
        match = _FILE.match(path.name)
        if not match:
            raise MigrationError(f"{path.name}: migration files are named NNN_name.sql")
        version = match.group(1)
        if version in migrations:
            raise MigrationError(f"{path.name} and {migrations[version].path.name} share version {version}")
        raw = path.read_bytes()
        migrations[version] = Migration(version, path, raw.decode(), hashlib.sha256(raw).hexdigest())
    return sorted(migrations.values(), key=lambda m: m.version)


_MAY_MIGRATE = """
SELECT CASE WHEN to_regclass('public.schema_migrations') IS NULL
            THEN has_schema_privilege('public', 'CREATE')
            ELSE pg_has_role((SELECT relowner FROM pg_catalog.pg_class
                              WHERE oid = to_regclass('public.schema_migrations')), 'USAGE') END,
       current_user
"""


def applied_by_owner(conn: psycopg.Connection) -> dict[str, str] | None:
    """What is applied, version to checksum, read as a login that is not the owner; None if it may not know."""
    try:
        with conn.transaction():
            rows = conn.execute("SELECT version, checksum FROM public.schema_migrations_applied()").fetchall()
    except (psycopg.errors.UndefinedFunction, psycopg.errors.UndefinedTable, psycopg.errors.InsufficientPrivilege):
        return None
    return dict(rows)


def check_applied(migrations: list[Migration], applied: dict[str, str] | None, user: str) -> None:
    """For a login that may not migrate: nothing to do if every migration is applied unchanged; else one line
    saying what to run."""
    todo = "run `make migrate` with the owner's URL in MIGRATE_DATABASE_URL (on Supabase, the postgres user's)"
    if applied is None:
        raise MigrationError(f"{user} may not change the schema nor read which migrations are applied: {todo}")
    changed = [m.path.name for m in migrations if m.version in applied and not m.applied_as(applied[m.version])]
    if changed:
        raise MigrationError(f"{', '.join(changed)} changed after it was applied: restore it and put the change in "
                             "a new migration")
    missing = [m.path.name for m in migrations if m.version not in applied]
    if missing:
        raise MigrationError(f"{len(missing)} migration(s) not applied ({', '.join(missing)}) and {user} may not "
                             f"apply them: {todo}")


def migrate(conn: psycopg.Connection, sql_dir: Path = SQL_DIR) -> list[tuple[Migration, bool]]:
    """Apply what is not applied yet; each migration with whether this call applied it. A login that may not
    change the schema only checks that nothing is left to apply (`check_applied`).

    `conn` must be in autocommit mode: every migration gets its own transaction.
    """
    may, user = conn.execute(_MAY_MIGRATE).fetchone()
    if not may:
        migrations = discover(sql_dir)
        check_applied(migrations, applied_by_owner(conn), user)
        return [(migration, False) for migration in migrations]
    # One runner at a time for the whole run: a migration in steps commits between them.
    conn.execute("SELECT pg_advisory_lock(%s)", (LOCK_KEY,))
    try:
        return _apply(conn, discover(sql_dir))
    finally:
        if not conn.closed:
            conn.execute("SELECT pg_advisory_unlock(%s)", (LOCK_KEY,))


def _apply(conn: psycopg.Connection, migrations: list[Migration]) -> list[tuple[Migration, bool]]:
    with conn.transaction():
        conn.execute(_CREATE_TABLE)
    results = []
    for migration in migrations:
        with conn.transaction():
            row = conn.execute(
                "SELECT checksum FROM public.schema_migrations WHERE version = %s", (migration.version,)
            ).fetchone()
            if row is not None:
                if not migration.applied_as(row[0]):
                    raise MigrationError(
                        f"{migration.path.name} changed after it was applied (version {migration.version}):"
                        " restore it and put the change in a new migration"
                    )
                results.append((migration, False))
                continue
            conn.execute(migration.sql)
            if migration.version not in STEPS:
                record(conn, migration)
                results.append((migration, True))
                continue
        while True:
            with conn.transaction():
                if not conn.execute(STEPS[migration.version]).fetchone()[0]:
                    record(conn, migration)
                    break
        results.append((migration, True))
    return results


def record(conn: psycopg.Connection, migration: Migration) -> None:
    """Record `migration` as applied (a runner that raced this one through its steps may have done so)."""
    conn.execute("INSERT INTO public.schema_migrations (version, checksum) VALUES (%s, %s) ON CONFLICT DO NOTHING",
                 (migration.version, migration.checksum))


#: A migration waits this long for a table a reader or the writer holds, then fails (run it again): never queue
#: every other session behind its ACCESS EXCLUSIVE lock for as long as a dashboard's transaction stays open.
LOCK_TIMEOUT = "30s"


def connect(url: str, wait: float = 0.0) -> psycopg.Connection:
    """An autocommit session without a statement timeout (a migration may rebuild a large table) but with a lock
    timeout, retried for up to `wait` seconds while the server starts."""
    conn = open_connection(url, "streaming-migrate", statement_timeout_ms=0, wait=wait)
    conn.execute(f"SET lock_timeout = '{LOCK_TIMEOUT}'")
    return conn


def pending(conn: psycopg.Connection, sql_dir: Path = SQL_DIR) -> list[Migration]:
    """The migrations not applied yet (all of them before the first run), read without changing anything; what a
    start path asks before it stops the writer to migrate."""
    if conn.execute("SELECT to_regclass('public.schema_migrations') IS NULL").fetchone()[0]:
        return discover(sql_dir)
    may, _ = conn.execute(_MAY_MIGRATE).fetchone()
    applied = (dict(conn.execute("SELECT version, checksum FROM public.schema_migrations").fetchall()) if may
               else applied_by_owner(conn) or {})
    return [migration for migration in discover(sql_dir) if migration.version not in applied]


def database_url(env: Mapping[str, str]) -> tuple[str, str]:
    """(variable, URL) to migrate: MIGRATE_DATABASE_URL, the owner's when the service runs as a lesser role;
    else DATABASE_URL; else the embedded database under STREAMING_VAR."""
    for name in ("MIGRATE_DATABASE_URL", "DATABASE_URL"):
        if env.get(name, "").strip():
            return name, env[name].strip()
    return "DATABASE_URL", embedded_database_url(Path(env.get("STREAMING_VAR") or Path.cwd() / "var").resolve())


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="python -m common.store.migrate", description=__doc__.splitlines()[0],
        epilog="The URL comes from MIGRATE_DATABASE_URL or DATABASE_URL (never the command line, where ps shows it).")
    parser.add_argument("--wait", type=float, default=0.0, metavar="SECONDS",
                        help="keep trying to connect this long (the server may be starting)")
    parser.add_argument("--pending", action="store_true",
                        help="apply nothing: print how many migrations are not applied yet")
    args = parser.parse_args(argv)
    name, url = database_url(os.environ)
    try:
        check_database_url(name, url)
        with connect(url, args.wait) as conn:
            if args.pending:
                print(len(pending(conn)))
                return
            for migration, applied in migrate(conn):
                print(f"{migration.path.name}: {'applied' if applied else 'already applied'}")
    except (MigrationError, ConfigError, psycopg.Error) as error:
        sys.exit(f"migrate: {reason(error, url, limit=None)}")


if __name__ == "__main__":
    main()
