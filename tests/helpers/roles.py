"""Logging in as another role of the test cluster (trust authentication on its socket: the user name is enough)."""

from __future__ import annotations

from urllib.parse import urlsplit, urlunsplit

import psycopg


def as_user(url: str, user: str) -> str:
    """`url` with its user replaced by `user`."""
    return urlunsplit(urlsplit(url)._replace(netloc=f"{user}@"))


def writer_login(url: str, name: str = "streaming_ingest") -> str:
    """A login role that is only a member of streaming_writer, as the README tells a Supabase user to make; its URL."""
    with psycopg.connect(url, autocommit=True) as conn:
        if not conn.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", (name,)).fetchone():
            conn.execute(f'CREATE ROLE "{name}" LOGIN IN ROLE streaming_writer')
    return as_user(url, name)
