import msgspec

from common.observe.rollup import LagTracker, MetricsRollup
from common.transport.messages import MetricSample

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


def published(ts, seqs, epoch=7):
    return msgspec.structs.replace(sample(ts, 0), epoch=epoch, last_seqs=seqs)


def test_lag_in_records_and_seconds_per_followed_stream():
    tracker = LagTracker()
    tracker.observe(published(1 * S, {"ingest/trade/SPY": 10, "ingest/quote/SPY": 99}))
    follows = ("ingest/trade/",)
    (row,) = tracker.rows(now_ns=1 * S, committed={"ingest/trade/SPY": (7, 10)}, follows=follows)
    assert (row.stream, row.published_seq, row.committed_seq, row.lag_records, row.lag_seconds) == (
        "ingest/trade/SPY", 10, 10, 0, 0.0), "quotes are followed by nobody: no row"
    tracker.observe(published(2 * S, {"ingest/trade/SPY": 25}))
    (row,) = tracker.rows(now_ns=5 * S, committed={"ingest/trade/SPY": (7, 12)}, follows=follows)
    assert (row.lag_records, row.lag_seconds) == (13, 3.0), "frame 11 was first seen published at 2 s"


def test_a_new_epoch_not_yet_committed_lags_by_all_of_it():
    tracker = LagTracker()
    tracker.observe(published(1 * S, {"ingest/trade/SPY": 5}, epoch=8))
    (row,) = tracker.rows(now_ns=3 * S, committed={"ingest/trade/SPY": (7, 900)}, follows=("ingest/",))
    assert (row.committed_seq, row.lag_records, row.lag_seconds) == (0, 5, 2.0)


def test_reconnects_per_interval_with_their_causes():
    rollup = MetricsRollup(stale_after_ns=3 * S)
    rollup.observe(msgspec.structs.replace(sample(1 * S, 1), reconnects={"stall": 1}))
    (first,) = rollup.rows(now_ns=1 * S)
    assert (first.reconnect_count, first.reconnect_causes) == (1, "stall=1")
    rollup.observe(msgspec.structs.replace(sample(2 * S, 2), reconnects={"stall": 3, "closed": 1}))
    (second,) = rollup.rows(now_ns=2 * S)
    assert (second.reconnect_count, second.reconnect_causes) == (3, "closed=1,stall=2")
    rollup.observe(msgspec.structs.replace(sample(3 * S, 3), reconnects={"stall": 3, "closed": 1}))
    assert rollup.rows(now_ns=3 * S)[0].reconnect_count == 0


def test_a_writer_that_trails_but_keeps_committing_shows_little_lag():
    tracker = LagTracker()
    follows = ("ingest/trade/",)
    for second in range(1, 301):  # five minutes of steady flow, the writer always five frames behind
        tracker.observe(published(second * S, {"ingest/trade/SPY": second * 10}))
        (row,) = tracker.rows(now_ns=second * S, committed={"ingest/trade/SPY": (7, second * 10 - 5)},
                              follows=follows)
        assert row.lag_records == 5 and row.lag_seconds <= 1.0, (second, row)


def test_an_outage_dates_the_lag_from_the_first_uncommitted_frame_with_bounded_memory():
    tracker = LagTracker()
    for second in range(1, 2 * LagTracker.HISTORY):
        tracker.observe(published(second * S, {"ingest/trade/SPY": second}))
    (row,) = tracker.rows(now_ns=2 * LagTracker.HISTORY * S, committed={"ingest/trade/SPY": (7, 0)},
                          follows=("ingest/",))
    assert row.lag_seconds == 2 * LagTracker.HISTORY - 1
    assert len(tracker._advances["ingest/trade/SPY"]) <= LagTracker.HISTORY
