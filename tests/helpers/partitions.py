"""A year of daily partitions, as a database the service has written to for a year holds them."""

from __future__ import annotations

import psycopg


def year_of_partitions(conn: psycopg.Connection, *tables: str) -> None:
    """The last 365 New York days' partitions (and a few ahead) of each of `tables`, a month a call: a call makes
    at most 64 partitions (sql/027), as a call's partitions take a share of a lock table every session shares."""
    today = conn.execute("SELECT (now() AT TIME ZONE 'America/New_York')::date").fetchone()[0]
    for table in tables:
        for back in range(365, 0, -30):
            conn.execute("SELECT create_partitions(%s::date - %s, %s::date - %s + 29, %s)",
                         (today, back, today, back, table))
