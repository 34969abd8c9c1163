from common.messages import MetricSample
from common.metrics import MetricsRollup

S = 1_000_000_000


def sample(ts, records, errors=0, processing_ms=0, status="running"):
    return MetricSample("writer", ts, status, records, records, 1, 7, processing_ms * 1_000_000, errors, 0)


def test_rows_are_differences_over_the_interval():
    rollup = MetricsRollup(stale_after_ns=3 * S)
    rollup.observe(sample(1 * S, 100, processing_ms=40))
    (first,) = rollup.rows(now_ns=1 * S)
    assert (first.records_processed, first.processing_time_ms, first.batch_size) == (100, 40, 7)
    rollup.observe(sample(2 * S, 130, errors=2, processing_ms=55))
    (second,) = rollup.rows(now_ns=2 * S)
    assert (second.records_processed, second.error_count, second.processing_time_ms) == (30, 2, 15)


def test_a_restarted_actor_counts_from_zero():
    rollup = MetricsRollup(stale_after_ns=3 * S)
    rollup.observe(sample(1 * S, 100))
    rollup.rows(now_ns=1 * S)
    rollup.observe(sample(2 * S, 5))
    assert rollup.rows(now_ns=2 * S)[0].records_processed == 5


def test_silent_actor_is_stale():
    rollup = MetricsRollup(stale_after_ns=3 * S)
    rollup.observe(sample(1 * S, 1))
    assert rollup.rows(now_ns=10 * S)[0].service_status == "stale"
