"""Shared fixtures (one throwaway Postgres per session, a fresh database per test) and the tiers' markers.

Tests connect as `postgres`, the non-superuser the service uses, never as the
superuser: that is what a Supabase project gives us.
"""

from __future__ import annotations

import shutil
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from common.store import migrate
from common.store.localpg import SUPERUSER, LocalPostgres

#: The folders of the tiers, each its marker's name.
TIERS = ("unit", "integration", "e2e")
#: What a unit test may not ask for: a database server.
SERVERS = {"pg", "db_url", "migrated_url", "migrated_template"}


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Each test carries its tier's marker, from its folder, so `-m` selects tiers alike; a unit test that asks
    for a database is refused, so the fast tier stays fast."""
    for item in items:
        tier = item.path.parent.name
        if tier not in TIERS:
            raise pytest.UsageError(f"{item.nodeid}: a test lives in tests/unit, tests/integration or tests/e2e")
        item.add_marker(tier)
        if tier == "unit" and SERVERS & set(getattr(item, "fixturenames", ())):
            raise pytest.UsageError(f"{item.nodeid}: a unit test asks for a database; it belongs in tests/integration")


@pytest.fixture(scope="session")
def pg() -> Iterator[LocalPostgres]:
    """A running local cluster; `pg.url()` reaches its `streaming` database as `postgres`."""
    base = Path(tempfile.mkdtemp(prefix="pgtest", dir="/tmp"))
    cluster = LocalPostgres(base / "pg")
    cluster.init()
    cluster.start()
    try:
        yield cluster
    finally:
        cluster.remove()
        shutil.rmtree(base, ignore_errors=True)


def _database(pg: LocalPostgres, template: str = "template1") -> Iterator[str]:
    """A new database owned by `postgres`, a copy of `template`, dropped after the test.

    The cluster's superuser drops it: WITH (FORCE) must end an autovacuum worker
    busy in it too, which `postgres` may not.
    """
    name = f"test_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(pg.url(SUPERUSER, "postgres"), autocommit=True) as admin:
        admin.execute(f"CREATE DATABASE {name} TEMPLATE {template} OWNER postgres")
    try:
        yield pg.url(dbname=name)
    finally:
        with psycopg.connect(pg.url(SUPERUSER, "postgres"), autocommit=True) as admin:
            admin.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


@pytest.fixture
def db_url(pg: LocalPostgres) -> Iterator[str]:
    """A new empty database owned by `postgres`, dropped after the test."""
    yield from _database(pg)


@pytest.fixture(scope="session")
def migrated_template(pg: LocalPostgres) -> str:
    """A database with every migration in sql/ applied, once per session, that nobody may connect to: each
    `migrated_url` is a copy of it (a tenth of the time the migrations take, now that they make partitions)."""
    name = "migrated_template"
    with psycopg.connect(pg.url(SUPERUSER, "postgres"), autocommit=True) as admin:
        admin.execute(f"CREATE DATABASE {name} OWNER postgres")
    with migrate.connect(pg.url(dbname=name)) as conn:
        migrate.migrate(conn)
    with psycopg.connect(pg.url(SUPERUSER, "postgres"), autocommit=True) as admin:
        admin.execute(f"ALTER DATABASE {name} ALLOW_CONNECTIONS false")
    return name


@pytest.fixture
def migrated_url(pg: LocalPostgres, migrated_template: str) -> Iterator[str]:
    """A new database with every migration in sql/ applied (a copy of `migrated_template`), dropped after."""
    yield from _database(pg, migrated_template)
