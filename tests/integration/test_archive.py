"""The archive (sql/025, common/store/archive.py): a day to Parquet and back, verified; what may be dropped; S3."""

from __future__ import annotations

from datetime import date, datetime, timedelta, timezone
from pathlib import Path

import boto3
import pandas
import pyarrow as pa
import psycopg
import pyarrow.parquet as pq
import pytest

from common.store import archive
from common.store.archive import (ArchiveFailed, LocalDestination, RestoreRefused, S3Destination, archive_day,
                                  restore_day, s3_client, trim_day)
from tests.helpers.archive import fill_equity_day, fill_option_day, rows_of
from tests.helpers.roles import as_user
from tests.helpers.s3_server import KEY_ID, SECRET, s3_server

DENIED = psycopg.errors.InsufficientPrivilege
REFUSED = psycopg.errors.RaiseException
TODAY = datetime.now(timezone.utc).astimezone(archive.NEW_YORK).date()
DAY = TODAY - timedelta(days=3)


@pytest.fixture
def conn(migrated_url):
    with psycopg.connect(migrated_url, autocommit=True) as connection:
        yield connection


def filled(conn, day=DAY, tickers=4, seconds=900) -> list[tuple]:
    fill_equity_day(conn, day, tickers, seconds)
    return rows_of(conn, "equity_data", day)


def logged(conn) -> list[tuple]:
    return conn.execute("SELECT table_name, day, row_count, checksum, location FROM archive_log"
                        " ORDER BY 1, 2").fetchall()


def partition(conn, table, day) -> str | None:
    return conn.execute("SELECT to_regclass(%s)::text", (f"streaming_partitions.{table}_{day:%Y%m%d}",)).fetchone()[0]


def test_a_day_archived_locally_is_every_row_and_column_as_pyarrow_and_pandas_read_it(conn, tmp_path):
    equity = filled(conn)
    fill_option_day(conn, DAY, contracts=30, minutes=40)
    options = rows_of(conn, "option_prices", DAY)
    dest = LocalDestination(tmp_path)
    done = {table: archive_day(conn, table, DAY, dest) for table in ("equity_data", "option_prices")}
    assert done["equity_data"].rows == len(equity) == 3600 and done["option_prices"].rows == len(options) == 1200
    for table, rows in (("equity_data", equity), ("option_prices", options)):
        path = tmp_path / f"table={table}/day={DAY.isoformat()}/part-0.parquet"
        assert done[table].location == str(path) and done[table].bytes == path.stat().st_size
        read = pq.read_table(path).sort_by("id")
        assert list(zip(*(column.to_pylist() for column in read.columns))) == rows
        assert read.schema.field("timestamp").type.tz == "UTC"
        assert read.schema.field("bid").type == pa.decimal128(18, 6)
    # pandas (and so DuckDB and polars) reads the hive layout: table and day are columns.
    frame = pandas.read_parquet(tmp_path, filters=[("table", "=", "equity_data"), ("day", "=", DAY.isoformat())])
    frame = frame.sort_values("id")
    assert list(frame["id"]) == [row[0] for row in equity]
    assert list(frame["price"]) == [row[3] for row in equity]
    assert [t.to_pydatetime() for t in frame["timestamp"]] == [row[2] for row in equity]
    assert logged(conn) == [
        ("equity_data", DAY, 3600, done["equity_data"].checksum,
         str(tmp_path / "table=equity_data" / f"day={DAY.isoformat()}" / "part-0.parquet")),
        ("option_prices", DAY, 1200, done["option_prices"].checksum, done["option_prices"].location)]
    assert not list(tmp_path.rglob("*.tmp"))
    # Twice is once.
    again = archive_day(conn, "equity_data", DAY, dest)
    assert (again.written, again.checksum, len(logged(conn))) == (False, done["equity_data"].checksum, 2)


def test_archive_drop_restore_gives_back_every_row_and_restoring_twice_is_once(conn, tmp_path):
    equity = filled(conn)
    dest = LocalDestination(tmp_path)
    done = archive_day(conn, "equity_data", DAY, dest)
    assert conn.execute("SELECT public.drop_archived_day('equity_data', %s)", (DAY,)).fetchone() == (3600,)
    assert partition(conn, "equity_data", DAY) is None and rows_of(conn, "equity_data", DAY) == []
    restored = restore_day(conn, "equity_data", DAY, dest)
    assert (restored.rows, restored.loaded) == (3600, True)
    assert rows_of(conn, "equity_data", DAY) == equity
    assert conn.execute("SELECT * FROM public.partition_checksum('equity_data', %s)", (DAY,)).fetchone() == \
        (3600, done.checksum)
    assert restore_day(conn, "equity_data", DAY, dest).loaded is False
    assert rows_of(conn, "equity_data", DAY) == equity
    # A partition holding other rows is refused, and left as it was.
    conn.execute("INSERT INTO equity_data (ticker, timestamp, price, volume, day_volume) VALUES ('ZZZ', %s, 1, 1, 1)",
                 (archive.day_bounds(DAY)[0] + timedelta(hours=12),))
    with pytest.raises(RestoreRefused, match="3601 rows that are not the archive's"):
        restore_day(conn, "equity_data", DAY, dest)
    assert len(rows_of(conn, "equity_data", DAY)) == 3601


def test_drop_archived_day_refuses_today_a_day_never_archived_and_a_day_changed_since(conn, tmp_path):
    filled(conn)
    filled(conn, TODAY, tickers=1, seconds=10)
    with pytest.raises(REFUSED, match="not a past New York day"):
        conn.execute("SELECT public.drop_archived_day('equity_data', %s)", (TODAY,))
    with pytest.raises(REFUSED, match="never archived"):
        conn.execute("SELECT public.drop_archived_day('equity_data', %s)", (DAY,))
    with pytest.raises(REFUSED, match="not a partitioned table"):
        conn.execute("SELECT public.drop_archived_day('archive_log', %s)", (DAY,))
    archive_day(conn, "equity_data", DAY, LocalDestination(tmp_path))
    conn.execute("INSERT INTO equity_data (ticker, timestamp, price, volume, day_volume) VALUES ('ZZZ', %s, 1, 1, 1)",
                 (archive.day_bounds(DAY)[0] + timedelta(hours=12),))
    with pytest.raises(REFUSED, match="changed since it was archived"):
        conn.execute("SELECT public.drop_archived_day('equity_data', %s)", (DAY,))
    assert partition(conn, "equity_data", DAY) and len(rows_of(conn, "equity_data", DAY)) == 3601
    # Archived again, it may go.
    assert archive_day(conn, "equity_data", DAY, LocalDestination(tmp_path)).rows == 3601
    assert conn.execute("SELECT public.drop_archived_day('equity_data', %s)", (DAY,)).fetchone() == (3601,)


OPEN = archive.day_bounds(DAY)[0] + timedelta(hours=9, minutes=30)


def test_a_day_trimmed_in_pieces_holds_every_row_once_and_restores_whole(conn, tmp_path):
    equity = filled(conn)  # 4 tickers, 15 minutes from 09:30
    dest = LocalDestination(tmp_path)
    first = trim_day(conn, "equity_data", DAY, OPEN + timedelta(minutes=5), dest)
    assert first.rows == sum(1 for row in equity if row[2] < OPEN + timedelta(minutes=5)) > 0
    assert len(rows_of(conn, "equity_data", DAY)) == len(equity) - first.rows, "the piece's rows left Postgres"
    assert trim_day(conn, "equity_data", DAY, OPEN + timedelta(minutes=5), dest) is None, "nothing left before it"
    # A row that comes late, with a time a piece already passed, stays until a later piece takes it.
    conn.execute("INSERT INTO equity_data (ticker, timestamp, price, volume, day_volume) VALUES ('ZZZ', %s, 1, 1, 1)",
                 (OPEN + timedelta(minutes=1),))
    second = trim_day(conn, "equity_data", DAY, OPEN + timedelta(minutes=10), dest)
    assert second.rows == sum(1 for row in equity if OPEN + timedelta(minutes=5) <= row[2]
                              < OPEN + timedelta(minutes=10)) + 1
    with pytest.raises(REFUSED, match="never archived"):
        conn.execute("SELECT public.drop_archived_day('equity_data', %s)", (DAY,))
    rest = archive_day(conn, "equity_data", DAY, dest)
    assert first.rows + second.rows + rest.rows == len(equity) + 1
    folder = tmp_path / f"table=equity_data/day={DAY.isoformat()}"
    assert len(list(folder.glob("*.parquet"))) == 3
    read = pq.read_table(folder)
    assert read.num_rows == len(equity) + 1 and len(set(read.column("id").to_pylist())) == read.num_rows, \
        "the day's folder read as one table: every row once"
    assert conn.execute("SELECT public.drop_archived_day('equity_data', %s)", (DAY,)).fetchone() == (rest.rows,)
    restored = restore_day(conn, "equity_data", DAY, dest)
    assert restored.loaded and restored.rows == len(equity) + 1
    late = [row for row in rows_of(conn, "equity_data", DAY) if row[1] == "ZZZ"]
    assert sorted(row for row in rows_of(conn, "equity_data", DAY) if row[1] != "ZZZ") == sorted(equity) and late
    assert restore_day(conn, "equity_data", DAY, dest).loaded is False, "twice is once"
    assert archive_day(conn, "equity_data", DAY, dest).written is False, "the restored day is its pieces"
    assert conn.execute("SELECT public.drop_archived_day('equity_data', %s)", (DAY,)).fetchone() == (len(equity) + 1,)
    restore_day(conn, "equity_data", DAY, dest)
    conn.execute("INSERT INTO equity_data (ticker, timestamp, price, volume, day_volume) VALUES ('ZZY', %s, 1, 1, 1)",
                 (OPEN,))
    with pytest.raises(ArchiveFailed, match="restored from pieces .* has changed since"):
        archive_day(conn, "equity_data", DAY, dest)


def test_trimming_deletes_exactly_the_pieces_rows_or_nothing(conn, tmp_path):
    equity = filled(conn)
    before = OPEN + timedelta(minutes=5)
    rows, checksum = archive.partition_checksum(conn, "equity_data", DAY, before)
    for wrong in ((rows - 1, checksum), (rows, "1")):
        with pytest.raises(REFUSED, match="nothing deleted"):
            conn.execute("SELECT public.trim_archived_rows('equity_data', %s, %s, %s, %s, 'x', 0)",
                         (DAY, before, *wrong))
    with pytest.raises(REFUSED, match="equity_bars are revised"):
        conn.execute("SELECT public.trim_archived_rows('equity_bars', %s, %s, 0, '0', 'x', 0)", (DAY, before))
    with pytest.raises(REFUSED, match="ahead of today"):
        conn.execute("SELECT public.trim_archived_rows('equity_data', %s, %s, 0, '0', 'x', 0)",
                     (TODAY + timedelta(days=1), before))
    assert rows_of(conn, "equity_data", DAY) == equity and logged(conn) == []
    for role in ("anon", "authenticated"):
        with psycopg.connect(conn.info.dsn, autocommit=True) as api:
            api.execute(f"SET ROLE {role}")
            with pytest.raises(DENIED):
                api.execute("SELECT public.trim_archived_rows('equity_data', %s, %s, %s, %s, 'x', 0)",
                            (DAY, before, rows, checksum))
    # The piece's own count and checksum: deleted and recorded, as one.
    assert conn.execute("SELECT public.trim_archived_rows('equity_data', %s, %s, %s, %s, 'x', 0)",
                        (DAY, before, rows, checksum)).fetchone() == (rows,)
    assert conn.execute("SELECT row_count, trimmed_before FROM archive_log").fetchall() == [(rows, before)]


def test_retention_drops_archived_old_days_and_keeps_the_others_saying_so(conn, tmp_path):
    archived_day, kept_day = TODAY - timedelta(days=41), TODAY - timedelta(days=40)
    filled(conn, archived_day, tickers=2, seconds=100)
    kept = filled(conn, kept_day, tickers=2, seconds=100)
    conn.execute("SELECT public.create_partitions(%s, %s)", (TODAY - timedelta(days=45), TODAY - timedelta(days=44)))
    archive_day(conn, "equity_data", archived_day, LocalDestination(tmp_path))
    notices = []
    conn.add_notice_handler(lambda notice: notices.append(notice.message_primary))
    result = dict(conn.execute("SELECT * FROM public.cleanup_old_equity_data(30)").fetchall())
    assert result["equity_data"] == 200
    assert partition(conn, "equity_data", archived_day) is None
    assert rows_of(conn, "equity_data", kept_day) == kept
    assert [n for n in notices if "equity_data" in n] == [
        f"cleanup_old_equity_data kept equity_data_{kept_day:%Y%m%d}: drop_archived_day: equity_data of {kept_day}"
        " (200 rows) was never archived: kept; archive it first"]
    # Empty old days hold nothing to keep: gone.
    assert partition(conn, "indicators", TODAY - timedelta(days=45)) is None


@pytest.fixture
def s3(tmp_path):
    with s3_server(tmp_path / "moto.log") as server:
        client = s3_client(server.endpoint, "us-east-1", KEY_ID, SECRET)
        client.create_bucket(Bucket="market-archive")
        yield server, client


def test_an_s3_archive_is_uploaded_read_back_and_restored_through_the_bucket(conn, tmp_path, s3):
    server, client = s3
    equity = filled(conn)
    dest = S3Destination("market-archive", "streaming", client, tmp_path / "staging")
    done = archive_day(conn, "equity_data", DAY, dest)
    key = f"streaming/table=equity_data/day={DAY.isoformat()}/part-0.parquet"
    assert done.location == f"s3://market-archive/{key}"
    assert client.head_object(Bucket="market-archive", Key=key)["ContentLength"] == done.bytes
    assert not [p for p in (tmp_path / "staging").rglob("*") if p.is_file()]  # staging only
    assert logged(conn)[0][4] == done.location
    other = boto3.client("s3", endpoint_url=server.endpoint, region_name="us-east-1", aws_access_key_id=KEY_ID,
                         aws_secret_access_key=SECRET)
    other.download_file("market-archive", key, str(tmp_path / "copy.parquet"))
    assert pq.read_table(tmp_path / "copy.parquet").num_rows == 3600
    conn.execute("SELECT public.drop_archived_day('equity_data', %s)", (DAY,))
    assert restore_day(conn, "equity_data", DAY, dest).loaded
    assert rows_of(conn, "equity_data", DAY) == equity


def test_a_day_trimmed_into_a_bucket_is_listed_and_restored_from_its_pieces(conn, tmp_path, s3):
    server, client = s3
    equity = filled(conn)
    dest = S3Destination("market-archive", "streaming", client, tmp_path / "staging")
    piece = trim_day(conn, "equity_data", DAY, OPEN + timedelta(minutes=7), dest)
    assert piece.location.startswith(f"s3://market-archive/streaming/table=equity_data/day={DAY.isoformat()}/"
                                     "part-before-")
    archive_day(conn, "equity_data", DAY, dest)
    assert len(dest.pieces("equity_data", DAY)) == 2
    conn.execute("SELECT public.drop_archived_day('equity_data', %s)", (DAY,))
    assert restore_day(conn, "equity_data", DAY, dest).rows == len(equity)
    assert rows_of(conn, "equity_data", DAY) == equity


def test_a_failing_bucket_raises_writes_no_log_row_and_keeps_the_partition(conn, tmp_path, s3):
    server, client = s3
    equity = filled(conn)
    with pytest.raises(ArchiveFailed, match="upload to s3://no-such-bucket/table=equity_data/.* failed"):
        archive_day(conn, "equity_data", DAY, S3Destination("no-such-bucket", "", client, tmp_path))
    server.stop()
    with pytest.raises(ArchiveFailed, match="failed"):
        archive_day(conn, "equity_data", DAY, S3Destination("market-archive", "", client, tmp_path))
    assert logged(conn) == [] and rows_of(conn, "equity_data", DAY) == equity
    assert not [p for p in tmp_path.rglob("*.parquet")]
    with pytest.raises(REFUSED, match="never archived"):
        conn.execute("SELECT public.drop_archived_day('equity_data', %s)", (DAY,))


def test_the_writer_role_archives_and_drops_and_the_api_roles_may_not(conn, migrated_url, tmp_path):
    filled(conn)
    conn.execute("CREATE ROLE archive_runner LOGIN IN ROLE streaming_writer")
    with psycopg.connect(as_user(migrated_url, "archive_runner"), autocommit=True) as writer:
        done = archive_day(writer, "equity_data", DAY, LocalDestination(tmp_path))
        assert writer.execute("SELECT count(*) FROM archive_log").fetchone() == (1,)
        assert writer.execute("SELECT public.drop_archived_day('equity_data', %s)", (DAY,)).fetchone() == (3600,)
        assert restore_day(writer, "equity_data", DAY, LocalDestination(tmp_path)).rows == done.rows
    for role in ("anon", "authenticated"):
        with psycopg.connect(migrated_url, autocommit=True) as api:
            api.execute(f"SET ROLE {role}")
            for statement in ("SELECT * FROM public.partition_checksum('equity_data', %s)",
                              "SELECT public.drop_archived_day('equity_data', %s)",
                              "SELECT * FROM archive_log WHERE day = %s",
                              "INSERT INTO archive_log VALUES ('equity_data', %s, 0, '0', 'x', 0)"):
                with pytest.raises(DENIED):
                    api.execute(statement, (DAY,))
    with psycopg.connect(migrated_url, autocommit=True) as service:
        service.execute("SET ROLE service_role")
        assert service.execute("SELECT count(*) FROM archive_log").fetchone() == (1,)
        with pytest.raises(DENIED):
            service.execute("INSERT INTO archive_log VALUES ('equity_data', %s, 0, '0', 'x', 0)", (DAY,))


def test_the_command_archives_complete_days_once_and_refuses_bad_input(conn, migrated_url, tmp_path, monkeypatch,
                                                                       capsys):
    filled(conn)
    filled(conn, DAY - timedelta(days=1), tickers=1, seconds=50)
    filled(conn, TODAY, tickers=1, seconds=10)
    monkeypatch.setenv("DATABASE_URL", migrated_url)
    monkeypatch.setenv("STREAM_SOURCE", "simulator")
    monkeypatch.setenv("STREAMING_VAR", str(tmp_path / "var"))
    monkeypatch.setenv("ARCHIVE_DIR", str(tmp_path / "archive"))
    assert archive.main([]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert [line.split(":")[0] for line in lines] == [f"equity_data {DAY - timedelta(days=1)}", f"equity_data {DAY}"]
    assert "50 rows" in lines[0] and "3,600 rows" in lines[1]
    assert archive.main(["archive"]) == 0
    assert capsys.readouterr().out.startswith("nothing to archive")
    conn.execute("SELECT public.drop_archived_day('equity_data', %s)", (DAY,))
    assert archive.main(["restore", "--table", "equity_data", "--day", DAY.isoformat()]) == 0
    assert capsys.readouterr().out == f"equity_data {DAY}: 3,600 rows restored\n"
    for argv, says in ((["--day", "2026-02-30"], "is not a day of the calendar"),
                       (["--table", "nope"], "'nope' is not a partitioned table"),
                       (["--day", TODAY.isoformat()], "is not a complete New York day"),
                       (["restore", "--table", "equity_data"], "restore takes --table and --day")):
        assert archive.main(argv) == 2
        err = capsys.readouterr().err
        assert says in err and err.count("\n") == 1, err
    (tmp_path / "file").write_text("")
    monkeypatch.setenv("ARCHIVE_DIR", str(tmp_path / "file" / "archive"))
    assert archive.main(["--day", DAY.isoformat()]) == 2
    assert "is not writable" in capsys.readouterr().err
