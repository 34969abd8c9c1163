"""Years of partitions, as a database the service has written to for years holds them."""

from __future__ import annotations

import shutil
from pathlib import Path

import psycopg

from common.store import migrate


def year_of_partitions(conn: psycopg.Connection, *tables: str, years: int = 1) -> None:
    """The last `years` × 365 New York days' partitions (and a few ahead) of each of `tables`, a month a call: a
    call makes at most 64 partitions (sql/027), as a call's partitions take a share of a lock table every session
    shares."""
    today = conn.execute("SELECT (now() AT TIME ZONE 'America/New_York')::date").fetchone()[0]
    for table in tables:
        for back in range(365 * years, 0, -30):
            conn.execute("SELECT create_partitions(%s::date - %s, %s::date - %s + 29, %s)",
                         (today, back, today, back, table))


def sql_before(tmp_path: Path, before: str) -> Path:
    """A copy of sql/ holding the migrations before version `before`."""
    old_sql = tmp_path / f"sql-before-{before}"
    old_sql.mkdir()
    for path in migrate.SQL_DIR.glob("*.sql"):
        if path.name < before:
            shutil.copy(path, old_sql)
    return old_sql
