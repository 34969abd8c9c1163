"""How `make storage` words the report: sizes in MB, growth per trading day, and how long the budget lasts."""

from decimal import Decimal

from common.store.storage import MB, TableStorage, render_table


def report(days: str | None) -> list[TableStorage]:
    trades = TableStorage("equity_data", 30 * MB, 20 * MB, 10 * MB, 150_000, Decimal("209.7"), 2,
                          Decimal("75000.0"), Decimal("15727500"), None)
    total = TableStorage("total", 40 * MB, None, None, None, None, None, None,
                         Decimal("15727500") if days else Decimal(0), None if days is None else Decimal(days))
    return [trades, total]


def test_the_table_gives_each_tables_size_rate_and_the_days_left():
    lines = render_table(report("30.7"), 500).splitlines()
    assert lines[1].split() == ["equity_data", "30.0", "10.0", "150,000", "210", "75,000", "15.00"]
    assert lines[2].split() == ["database", "40.0", "15.00"]
    assert lines[3] == "At this rate the 500 MB budget is full in 30.7 trading days."


def test_a_database_that_does_not_grow_never_fills():
    assert render_table(report(None), 500).splitlines()[-1] == (
        "No rows in the window: at this rate the 500 MB budget is never full.")


def test_a_day_larger_than_the_budget_is_said_to_be_trimmed_as_it_goes():
    trades = TableStorage("equity_data", 300 * MB, 200 * MB, 100 * MB, 1_500_000, Decimal("209.7"), 1,
                          Decimal("1500000"), Decimal(600 * MB), None)
    total = TableStorage("total", 320 * MB, None, None, None, None, None, None, Decimal(600 * MB), Decimal("0.3"))
    assert render_table([trades, total], 500).splitlines()[4] == (
        "A trading day is more than the budget: Postgres holds about the last 4.9 hours of the session, and "
        "today's older hours are archived as Parquet and deleted as the day goes.")
