"""The Realtime switch: the low-volume tables in and out of Supabase's publication, owner only."""

from __future__ import annotations

import psycopg
import pytest

LOW_VOLUME = ["equity_bars", "indicators"]


def test_the_switch_adds_the_low_volume_tables_once_and_takes_them_out(migrated_url):
    with psycopg.connect(migrated_url, autocommit=True) as conn:
        with pytest.raises(psycopg.errors.RaiseException, match="no supabase_realtime publication"):
            conn.execute("SELECT public.set_realtime(true)")
        conn.execute("CREATE PUBLICATION supabase_realtime")  # what Supabase creates in every project
        assert conn.execute("SELECT public.set_realtime(true)").fetchone() == (LOW_VOLUME,)
        assert conn.execute("SELECT public.set_realtime(true)").fetchone() == (LOW_VOLUME,), "twice is once"
        published = conn.execute("SELECT tablename FROM pg_publication_tables WHERE pubname = 'supabase_realtime'"
                                 " ORDER BY 1").fetchall()
        assert published == [(table,) for table in LOW_VOLUME], "never the trades, quotes or option prices"
        assert conn.execute("SELECT pubviaroot FROM pg_publication WHERE pubname = 'supabase_realtime'"
                            ).fetchone() == (True,), "a day's partition's changes under its table's name"
        assert conn.execute("SELECT public.set_realtime(false)").fetchone() == ([],)


@pytest.mark.parametrize("role", ["anon", "authenticated", "service_role"])
def test_no_api_role_may_flip_it(migrated_url, role):
    with psycopg.connect(migrated_url, autocommit=True) as conn:
        conn.execute(f"SET ROLE {role}")
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            conn.execute("SELECT public.set_realtime(true)")
