"""The facts the health check reads from a real, migrated database."""

from __future__ import annotations

import psycopg

from common.observe import health
from common.observe.health import DatabaseFacts


def test_the_database_facts_from_a_migrated_database(migrated_url):
    empty = health.read_database(migrated_url)
    assert empty == DatabaseFacts({t: None for t in health.FRESHNESS}, {}, None, {})
    with psycopg.connect(migrated_url, autocommit=True) as conn:
        conn.execute("INSERT INTO equity_data (ticker, timestamp, price, volume, day_volume)"
                     " VALUES ('SPY', now(), 600, 1, 1)")
        conn.execute("INSERT INTO streaming_metrics (timestamp, actor, records_processed, error_count, service_status)"
                     " VALUES (now() - interval '20 s', 'ingest', 100, 1, 'reconnecting'),"
                     "        (now() - interval '10 s', 'ingest', 50, 0, 'running'),"
                     "        (now() - interval '1 h', 'writer', 10, 10, 'running')")
        conn.execute("INSERT INTO stream_metrics (timestamp, stream, epoch, published_seq, committed_seq,"
                     " lag_records, lag_seconds) VALUES (now() - interval '2 s', 's', 1, 9, 1, 8, 70),"
                     " (now() - interval '1 s', 's', 1, 9, 9, 0, 0)")
    facts = health.read_database(migrated_url)
    assert 0 <= facts.ages["equity_data"] < 60 and facts.ages["indicators"] is None
    assert facts.activity == {"ingest": (150, 1)} and facts.ingest_status == "running"
    assert facts.lags == {"s": (0, 0.0)}


