"""Every connection the service opens: named, autocommit, with its statement timeout (a real Postgres)."""

from __future__ import annotations

import time

import psycopg
import pytest

from common.store.connection import open_connection


def test_a_session_is_named_autocommit_and_times_statements_out(db_url):
    with open_connection(db_url, "streaming-test", statement_timeout_ms=1500) as conn:
        assert conn.autocommit
        assert conn.execute("SHOW application_name").fetchone() == ("streaming-test",)
        assert conn.execute("SHOW statement_timeout").fetchone() == ("1500ms",)
        with pytest.raises(psycopg.errors.QueryCanceled):
            conn.execute("SELECT pg_sleep(5)")
    with open_connection(db_url, "streaming-migrate", statement_timeout_ms=0) as conn:
        assert conn.execute("SHOW statement_timeout").fetchone() == ("0",)


def test_a_server_that_is_not_there_is_retried_for_the_wait_then_raised(tmp_path):
    url = f"postgresql://postgres@/streaming?host={tmp_path}"  # no server listens on this socket directory
    started = time.monotonic()
    with pytest.raises(psycopg.OperationalError):
        open_connection(url, "streaming-test", wait=1.0)
    assert 1.0 <= time.monotonic() - started < 5
