"""The health checks' judgements, from gathered facts and an injected clock (no market hours of the real world)."""

from __future__ import annotations

import json
import logging
from datetime import date, datetime

import pytest

from common.config import ACTORS
from common.feed.market_hours import NEW_YORK, MarketSchedule
from common.observe import health
from common.observe.health import Check, DatabaseFacts, Facts, Level, check_storage

REGULAR = health.schedules_for(("regular",), always_open=False)
EXTENDED = health.schedules_for(("pre", "regular", "post"), always_open=False)
ALWAYS = health.schedules_for(("regular",), always_open=True)
RUNNING = {actor: ("RUNNING", "pid 1, uptime 0:01:00") for actor in ACTORS}


def ny(month: int, day: int, hour: int, minute: int = 0) -> datetime:
    return datetime(2026, month, day, hour, minute, tzinfo=NEW_YORK)


WEDNESDAY = ny(11, 25, 11)
SATURDAY = ny(11, 28, 11)
THANKSGIVING = ny(11, 26, 11)
AFTER_EARLY_CLOSE = ny(11, 27, 14)  # the Friday after Thanksgiving closes at 13:00


def freshness(table: str, age_s: float | None, now: datetime, schedules=REGULAR) -> Check:
    return health.check_freshness(table, age_s, health.open_for(schedules[table], now))


def healthy(**changes) -> DatabaseFacts:
    facts = {
        "ages": {table: 0.5 for table in health.FRESHNESS},
        "activity": {actor: (1000, 0) for actor in ACTORS},
        "ingest_status": "running",
        "lags": {"ingest/trade/SPY": (0, 0.0), "indicator/indicator/SPY": (2, 0.1)},
    }
    return DatabaseFacts(**{**facts, **changes})


# --- freshness and the market's hours ------------------------------------------------------------------------


@pytest.mark.parametrize("age_s, level", [(30, Level.OK), (121, Level.WARN), (601, Level.CRIT)])
def test_a_table_goes_stale_while_the_session_is_open(age_s, level):
    check = freshness("equity_data", age_s, WEDNESDAY)
    assert check.level is level and check.value == age_s
    assert (f"({level.name} past" in check.detail) is (level is not Level.OK)


def test_option_quotes_are_allowed_longer():
    assert freshness("option_prices", 200, WEDNESDAY).level is Level.OK
    assert freshness("option_prices", 400, WEDNESDAY).level is Level.WARN
    assert freshness("option_prices", 1000, WEDNESDAY).level is Level.CRIT


@pytest.mark.parametrize("now", [SATURDAY, THANKSGIVING, AFTER_EARLY_CLOSE, ny(11, 25, 16, 1), ny(11, 25, 9, 29)],
                         ids=["saturday", "thanksgiving", "after-early-close", "after-close", "before-open"])
def test_no_alarm_outside_the_session(now):
    for table in health.FRESHNESS:
        check = freshness(table, 86_400.0, now)
        assert check.level is Level.OK and check.detail.startswith("market closed"), check


def test_the_early_close_day_is_judged_until_its_close():
    assert freshness("equity_data", 3600, ny(11, 27, 12, 30)).level is Level.CRIT


def test_a_session_that_just_opened_is_given_the_grace_of_the_thresholds():
    overnight = 17.5 * 3600
    opening = freshness("equity_data", overnight, ny(11, 25, 9, 31))
    assert opening.level is Level.OK and "session open 60 s" in opening.detail
    assert freshness("equity_data", overnight, ny(11, 25, 9, 33)).level is Level.WARN
    assert freshness("equity_data", overnight, ny(11, 25, 9, 41)).level is Level.CRIT


def test_an_empty_table_alarms_once_the_session_has_been_open_long_enough():
    assert freshness("indicators", None, ny(11, 25, 9, 31)).level is Level.OK
    late = freshness("indicators", None, WEDNESDAY)
    assert late.level is Level.CRIT and late.detail.startswith("no rows")


def test_extended_sessions_judge_trades_but_not_options_after_the_close():
    evening = ny(11, 25, 17)
    assert freshness("equity_data", 900, evening, EXTENDED).level is Level.CRIT
    assert freshness("option_prices", 900, evening, EXTENDED).detail.startswith("market closed")
    assert freshness("option_prices", 900, evening).detail.startswith("market closed")  # regular only: all closed


def test_an_always_open_market_is_judged_at_any_hour():
    check = freshness("equity_data", 900, SATURDAY, ALWAYS)
    assert check.level is Level.CRIT and "session open" not in check.detail
    assert freshness("option_prices", 10, THANKSGIVING, ALWAYS).level is Level.OK


def test_a_failing_schwab_fetch_falls_back_to_the_calendar():
    def unreachable(day: date) -> dict:
        raise ConnectionError("Schwab unreachable")

    schedule = MarketSchedule(unreachable, ("regular",), logger=logging.getLogger("test.health"))
    assert health.open_for(schedule, THANKSGIVING) is None and health.open_for(schedule, SATURDAY) is None
    assert health.open_for(schedule, WEDNESDAY) == 90 * 60


# --- errors, ingest, lag, supervisord ------------------------------------------------------------------------


@pytest.mark.parametrize("records, errors, level", [
    (1000, 0, Level.OK), (1000, 10, Level.OK), (1000, 11, Level.WARN), (1000, 51, Level.CRIT), (0, 1, Level.CRIT),
])
def test_error_rate_is_the_worst_actors(records, errors, level):
    check = health.check_error_rate({"ingest": (50_000, 0), "writer": (records, errors)})
    assert check.level is level
    assert ("writer" in check.detail) is bool(errors)


def test_no_metrics_at_all_is_a_warning():
    assert health.check_error_rate({}).level is Level.WARN


@pytest.mark.parametrize("status, level", [
    ("running", Level.OK), ("market_closed", Level.OK), ("connecting", Level.OK),
    ("reconnecting", Level.WARN), ("stale", Level.WARN), (None, Level.WARN),
    ("connection_limit", Level.CRIT), ("token_expired", Level.CRIT),
])
def test_ingest_status(status, level):
    assert health.check_ingest(status).level is level


def test_an_expired_token_says_what_to_do():
    check = health.check_ingest("token_expired")
    assert check.level is Level.CRIT and "make login" in check.detail


def test_delayed_data_warns_naming_the_services_and_what_to_do():
    delayed = health.check_entitlement(("NP", "LEVELONE_EQUITIES,LEVELONE_OPTIONS"))
    assert delayed.level is Level.WARN and delayed.value == "LEVELONE_EQUITIES,LEVELONE_OPTIONS"
    assert "LEVELONE_EQUITIES, LEVELONE_OPTIONS delayed (LOGIN status NP)" in delayed.detail
    assert "15 minutes old" in delayed.detail and "market data agreements" in delayed.detail
    assert health.check_entitlement(("NP", "")).level is Level.OK
    assert health.check_entitlement(("NP", "")).detail == "real-time (LOGIN status NP)"
    assert health.check_entitlement(None).level is Level.OK, "before any level-one data, nothing to say"


@pytest.mark.parametrize("seconds, level", [(0.0, Level.OK), (60.0, Level.OK), (61.0, Level.WARN),
                                            (300.0, Level.WARN), (301.0, Level.CRIT)])
def test_journal_lag_is_the_worst_streams(seconds, level):
    check = health.check_lag({"ingest/trade/SPY": (0, 0.0), "options/option_row/SPY": (40 if seconds else 0, seconds)})
    assert check.level is level and check.value == seconds
    assert ("options/option_row/SPY" in check.detail) is bool(seconds)


def test_no_stream_reported_is_no_lag():
    assert health.check_lag({}).level is Level.OK


@pytest.mark.parametrize("state, level", [
    ("RUNNING", Level.OK), ("STARTING", Level.WARN), ("BACKOFF", Level.WARN),
    ("FATAL", Level.CRIT), ("EXITED", Level.CRIT), ("STOPPED", Level.CRIT),
])
def test_supervisor_states(state, level):
    checks = {c.name: c for c in health.check_actors({**RUNNING, "indicator": (state, "")}, "")}
    assert [name for name in checks] == [f"actor:{a}" for a in ACTORS]
    assert checks["actor:indicator"].level is level and checks["actor:indicator"].value == state
    assert {c.level for n, c in checks.items() if n != "actor:indicator"} == {Level.OK}


def test_an_actor_supervisord_does_not_know_and_an_unreachable_supervisord_are_critical():
    missing = {k: v for k, v in RUNNING.items() if k != "options"}
    assert {c.name: c.level for c in health.check_actors(missing, "")}["actor:options"] is Level.CRIT
    unreachable = health.check_actors(None, "supervisord not reachable at /x/supervisor.sock")
    assert {c.level for c in unreachable} == {Level.CRIT} and "not reachable" in unreachable[0].detail


# --- everything together -------------------------------------------------------------------------------------


def test_a_healthy_service_is_ok_on_any_day():
    for now, schedules in ((WEDNESDAY, REGULAR), (SATURDAY, REGULAR), (SATURDAY, ALWAYS)):
        checks = health.evaluate(Facts(healthy(), actors=RUNNING), now, schedules)
        assert health.overall(checks) is Level.OK, checks
        assert [c.name for c in checks] == ["database", *(f"freshness:{t}" for t in health.FRESHNESS), "error_rate",
                                            "ingest_status", "realtime", "journal_lag", "storage_budget",
                                            *(f"actor:{a}" for a in ACTORS)]


def test_the_worst_check_decides_the_exit_status():
    warn = health.evaluate(Facts(healthy(ingest_status="reconnecting"), actors=RUNNING), WEDNESDAY, REGULAR)
    assert health.overall(warn) is Level.WARN and int(health.overall(warn)) == 1
    crit = health.evaluate(Facts(healthy(ingest_status="reconnecting", lags={"s": (9, 400.0)}), actors=RUNNING),
                           WEDNESDAY, REGULAR)
    assert int(health.overall(crit)) == 2
    assert int(health.overall([])) == 0


def test_stale_tables_alarm_on_wednesday_but_not_on_saturday():
    stale = healthy(ages={table: 3600.0 for table in health.FRESHNESS})
    assert health.overall(health.evaluate(Facts(stale, actors=RUNNING), WEDNESDAY, REGULAR)) is Level.CRIT
    assert health.overall(health.evaluate(Facts(stale, actors=RUNNING), SATURDAY, REGULAR)) is Level.OK


def test_an_unreachable_database_is_critical_and_its_checks_are_left_out():
    checks = health.evaluate(Facts(None, "connection refused", RUNNING), WEDNESDAY, REGULAR)
    assert [c.name for c in checks] == ["database", *(f"actor:{a}" for a in ACTORS)]
    assert checks[0] == Check("database", Level.CRIT, "connection refused")
    assert health.overall(checks) is Level.CRIT


def test_the_table_aligns_every_check_and_json_carries_the_same():
    checks = health.evaluate(Facts(healthy(), actors={**RUNNING, "indicator": ("STOPPED", "Nov 24 03:00 PM")}),
                             WEDNESDAY, REGULAR)
    lines = health.render_table(checks).splitlines()
    assert lines[0].split() == ["CHECK", "LEVEL", "DETAIL"] and lines[-1] == "status: CRIT"
    columns = {line.index(check.level.name, len(check.name)) for line, check in zip(lines[1:], checks)}
    assert columns == {lines[0].index("LEVEL")}
    document = json.loads(health.render_json(checks))
    assert document["status"] == "CRIT"
    assert [c["name"] for c in document["checks"]] == [c.name for c in checks]
    assert {c["name"]: c["level"] for c in document["checks"]}["actor:indicator"] == "CRIT"


# --- the shell, without a pipeline ---------------------------------------------------------------------------


def test_the_command_reports_what_it_cannot_reach_and_exits_2(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("STREAMING_VAR", str(tmp_path))
    monkeypatch.delenv("DATABASE_URL", raising=False)  # the embedded database under STREAMING_VAR, not running
    assert health.main(["--json"]) == 2
    out, _ = capsys.readouterr()
    document = json.loads(out)
    levels = {c["name"]: c["level"] for c in document["checks"]}
    assert document["status"] == "CRIT" and levels["database"] == "CRIT" and levels["actor:writer"] == "CRIT"
    assert str(tmp_path / "run" / "supervisor.sock") in document["checks"][-1]["detail"]


def test_a_bad_setting_is_a_critical_check(monkeypatch, capsys):
    monkeypatch.setenv("BUS_TRANSPORT", "carrier-pigeon")
    assert health.main([]) == 2
    assert "BUS_TRANSPORT" in capsys.readouterr().out


def test_the_storage_budget_shows_as_the_writer_judged_it_and_an_old_judgement_warns():
    assert check_storage(None).level == Level.OK
    assert check_storage(("ok", "12.0 of 500 MB (2%)", 30.0)).level == Level.OK
    warn = check_storage(("warn", "480.0 of 500 MB (96%)", 30.0))
    assert warn.level == Level.WARN and "480.0 of 500 MB" in warn.detail
    assert check_storage(("crit", "a day no longer fits", 5.0)).level == Level.CRIT
    stale = check_storage(("ok", "12.0 of 500 MB (2%)", 3_600.0))
    assert stale.level == Level.WARN and "last measured" in stale.detail


def test_option_snapshots_an_interval_apart_are_not_stale():
    assert health.check_freshness("option_prices", 900.0, 7_200.0, slack_s=900.0).level == Level.OK
    assert health.check_freshness("option_prices", 900.0, 7_200.0).level == Level.WARN


def test_the_archive_says_its_size_and_warns_then_fails_as_its_disk_runs_short(tmp_path):
    roomy = health.ArchiveFacts("/var/archive", 3 << 20, 12, 20 << 30)
    assert health.check_archive(roomy).level == Level.OK
    assert health.check_archive(roomy).detail == "12 files, 3.0 MB in /var/archive; 20.0 GB free on its disk"
    short = health.check_archive(health.ArchiveFacts("/var/archive", 3 << 20, 12, 512 << 20))
    assert short.level == Level.WARN and "or set ARCHIVE_S3_URL" in short.detail
    assert health.check_archive(health.ArchiveFacts("/var/archive", 3 << 20, 12, 100 << 20)).level == Level.CRIT
    staged = health.check_archive(health.ArchiveFacts("/var/archive", 0, 0, 20 << 30, "s3://market-archive"))
    assert staged.detail.startswith("in s3://market-archive; staging: 0 files")
    (tmp_path / "table=equity_data" / "day=2026-12-04").mkdir(parents=True)
    (tmp_path / "table=equity_data" / "day=2026-12-04" / "part-0.parquet").write_bytes(b"x" * 1000)
    read = health.read_archive(tmp_path, None)
    assert (read.bytes, read.files) == (1000, 1) and read.free_bytes > 0
    assert health.read_archive(tmp_path / "not" / "yet", None).files == 0, "an archive not made yet is empty"
