from common.batching import Batcher


def test_due_by_size():
    batcher = Batcher(max_rows=3, max_age=10)
    for i in range(2):
        batcher.add("equity_data", [(i,)], now=0)
    assert not batcher.due(now=1)
    batcher.add("indicators", [(9,)], now=1)
    assert batcher.due(now=1)
    assert batcher.take() == {"equity_data": [(0,), (1,)], "indicators": [(9,)]}
    assert len(batcher) == 0 and batcher.deadline() is None


def test_due_by_age_of_the_oldest_row():
    batcher = Batcher(max_rows=100, max_age=0.05)
    assert not batcher.due(now=5)
    batcher.add("equity_data", [(1,)], now=5.0)
    batcher.add("equity_data", [(2,)], now=5.04)
    assert batcher.deadline() == 5.05
    assert not batcher.due(now=5.049)
    assert batcher.due(now=5.05)


def test_take_keeps_order_within_a_table():
    batcher = Batcher(max_rows=10, max_age=1)
    rows = [(i,) for i in range(5)]
    batcher.add("t", rows[:2], now=0)
    batcher.add("t", rows[2:], now=0)
    assert batcher.take()["t"] == rows and len(batcher) == 0
