import pytest

from common.store.batching import Batcher


def test_due_by_size():
    batcher = Batcher(max_rows=3, max_age=10)
    for i in range(2):
        batcher.add("equity_data", [(i,)], since=0)
    assert not batcher.due(now=1)
    batcher.add("indicators", [(9,)], since=1)
    assert batcher.due(now=1)
    assert batcher.take() == {"equity_data": [(0,), (1,)], "indicators": [(9,)]}
    assert len(batcher) == 0 and batcher.deadline() is None


def test_due_by_age_of_the_oldest_row():
    batcher = Batcher(max_rows=100, max_age=0.05)
    assert not batcher.due(now=5)
    batcher.add("equity_data", [(1,)], since=5.0)
    batcher.add("equity_data", [(2,)], since=5.04)
    assert batcher.deadline() == 5.05
    assert not batcher.due(now=5.049)
    assert batcher.due(now=5.05)


def test_take_keeps_order_within_a_table():
    batcher = Batcher(max_rows=10, max_age=1)
    rows = [(i,) for i in range(5)]
    batcher.add("t", rows[:2], since=0)
    batcher.add("t", rows[2:], since=0)
    assert batcher.take()["t"] == rows and len(batcher) == 0


def test_rows_that_waited_on_the_socket_count_their_wait_up_to_one_interval():
    batcher = Batcher(max_rows=100, max_age=0.05)
    assert batcher.waiting_since(10.0, 0.02) == pytest.approx(9.98)
    assert batcher.waiting_since(10.0, 30.0) == pytest.approx(9.95), "a replayed frame from long ago is just due"
    assert batcher.waiting_since(10.0, -1.0) == 10.0, "a sender's clock ahead of ours never postpones"
    batcher.add("t", [(1,)], since=10.0)
    batcher.add("t", [(2,)], since=batcher.waiting_since(10.01, 0.03))
    assert batcher.deadline() == pytest.approx(10.03), "the oldest wait counts, whichever frame came first"


def test_a_batch_is_full_at_max_rows_whatever_its_age():
    batcher = Batcher(max_rows=100, max_age=0.05)
    batcher.add("t", [(1,)], since=1.0)
    assert not batcher.full() and not batcher.due(now=1.01)
    batcher.add("t", [(2,)] * 99, since=1.01)
    assert batcher.full() and batcher.due(now=1.01)
