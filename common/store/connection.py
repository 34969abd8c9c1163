"""Every database connection the service opens, opened one way, and every database error put into words one way.

`open_connection` gives an autocommit session named for the part of the
service that holds it (`application_name`: `pg_stat_activity` says who is
connected), with a connect timeout and a statement timeout, the latter set
with SET because Supabase's poolers may refuse it as a startup option. The
writer, the status page, the health check and migrations all connect
through it; only their names and timeouts differ.

`reason` is how a database error reaches a log line or a terminal: one
line, with every secret the process knows and the URL's password masked (a
server can quote back what it was given, and libpq echoes the URL token it
could not parse), cut to a length a log line can carry.
"""

from __future__ import annotations

import time

import psycopg

from common.redact import REDACT, Redactor, passwords

#: Seconds to wait for the server to answer a connection attempt.
CONNECT_TIMEOUT_S = 10
#: A statement running longer than this is cancelled by the server; 0 means never (migrations).
STATEMENT_TIMEOUT_MS = 30_000
#: How much of an error a log line carries.
REASON_CHARS = 300


def open_connection(
    url: str,
    application_name: str,
    *,
    statement_timeout_ms: int = STATEMENT_TIMEOUT_MS,
    connect_timeout_s: int = CONNECT_TIMEOUT_S,
    wait: float = 0.0,
) -> psycopg.Connection:
    """An autocommit session named `application_name`; retried for up to `wait` seconds while the server starts."""
    deadline = time.monotonic() + wait
    while True:
        try:
            conn = psycopg.connect(url, autocommit=True, application_name=application_name,
                                   connect_timeout=connect_timeout_s)
            break
        except psycopg.OperationalError:
            if time.monotonic() >= deadline:
                raise
            time.sleep(0.5)
    try:
        conn.execute("SELECT set_config('statement_timeout', %s, false)", (str(int(statement_timeout_ms)),))
    except BaseException:
        conn.close()
        raise
    return conn


def reason(error: BaseException, url: str = "", limit: int | None = REASON_CHARS) -> str:
    """`error` as one line for a log or a terminal, secrets masked, at most `limit` characters."""
    text = REDACT(Redactor(passwords(url))(" ".join(str(error).split()))) or type(error).__name__
    return text if limit is None else text[:limit]
