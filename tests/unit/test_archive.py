"""The archive's pure parts: where a day's file goes, the New York day, types, encodings, the client checksum,
what is left to archive, and the archive's settings."""

from __future__ import annotations

from datetime import date, datetime, timedelta, timezone
from decimal import Decimal
from pathlib import Path

import pyarrow as pa
import pytest

from common.config import ConfigError, load
from common.feed.market_hours import NEW_YORK
from common.store import archive
from common.store.archive import (ArchiveFailed, Column, LocalDestination, S3Destination, Tally, arrow_schema,
                                  arrow_type, batch_from_rows, batch_rows, day_bounds, days_to_archive, encodings,
                                  object_key, parse_day, split_s3_url)

UTC = timezone.utc


def test_the_layout_is_hive_style_by_table_and_day_one_file_per_piece():
    assert object_key("equity_data", date(2026, 12, 2)) == "table=equity_data/day=2026-12-02/part-0.parquet"
    assert object_key("equity_data", date(2026, 12, 2), datetime(2026, 12, 2, 10, tzinfo=NEW_YORK)) == \
        "table=equity_data/day=2026-12-02/part-before-20261202T150000Z.parquet", "a trimmed piece: its cut, in UTC"
    first, second = (object_key("indicators", date(2026, 11, 1), datetime(2026, 11, 1, 1, tzinfo=UTC) + offset)
                     for offset in (timedelta(hours=5), timedelta(hours=6)))
    assert first != second, "01:00 comes twice in New York when the clocks go back; its pieces do not collide"
    key = object_key("indicators", date(2026, 1, 5))
    assert LocalDestination(Path("/a")).location(key) == "/a/table=indicators/day=2026-01-05/part-0.parquet"
    assert S3Destination("b", "x/y", None, Path("/s")).location(key) == \
        "s3://b/x/y/table=indicators/day=2026-01-05/part-0.parquet"
    assert S3Destination("b", "", None, Path("/s")).location(key) == "s3://b/table=indicators/day=2026-01-05/part-0.parquet"
    assert split_s3_url("s3://bucket/a/b/") == ("bucket", "a/b")
    assert split_s3_url("s3://bucket") == ("bucket", "")


def test_a_local_days_pieces_are_its_parquet_files_and_nothing_else(tmp_path):
    destination = LocalDestination(tmp_path)
    day = date(2026, 12, 2)
    keys = [object_key("equity_data", day), object_key("equity_data", day, datetime(2026, 12, 2, 16, tzinfo=UTC))]
    for key in keys:
        Path(destination.location(key)).parent.mkdir(parents=True, exist_ok=True)
        Path(destination.location(key)).write_bytes(b"piece")
    Path(destination.staging(keys[0])).write_bytes(b"half written")
    assert destination.pieces("equity_data", day) == sorted(keys)
    assert destination.pieces("indicators", day) == []


def test_a_day_is_new_york_midnight_to_midnight_23_or_25_hours_when_the_clocks_change():
    assert day_bounds(date(2026, 12, 2)) == (datetime(2026, 12, 2, 5, tzinfo=UTC), datetime(2026, 12, 3, 5, tzinfo=UTC))
    start, end = day_bounds(date(2026, 3, 8))
    assert (start.hour, (end - start).total_seconds()) == (5, 23 * 3600)
    start, end = day_bounds(date(2026, 11, 1))
    assert (start.hour, (end - start).total_seconds()) == (4, 25 * 3600)


@pytest.mark.parametrize("text", ["2026-13-01", "2026-02-30", "20261201", "yesterday", "2026-1-1"])
def test_a_day_must_be_a_calendar_day_written_yyyy_mm_dd(text):
    with pytest.raises(ValueError, match="YYYY-MM-DD"):
        parse_day(text)
    assert parse_day(" 2026-12-01 ") == date(2026, 12, 1)


def test_every_column_type_maps_to_a_lossless_arrow_type():
    assert arrow_type("bigint") == pa.int64()
    assert arrow_type("integer") == pa.int32()
    assert arrow_type("numeric(18,6)") == pa.decimal128(18, 6)
    assert arrow_type("numeric(20,4)") == pa.decimal128(20, 4)
    assert arrow_type("timestamp with time zone") == pa.timestamp("us", tz="UTC")
    assert arrow_type("date") == pa.date32()
    assert arrow_type("text") == pa.string()
    assert arrow_type("character varying(4)") == pa.string()
    assert arrow_type("double precision") == pa.float64()
    for unknown in ("numeric", "jsonb", "numeric(40,2)"):
        with pytest.raises(ArchiveFailed, match="no lossless"):
            arrow_type(unknown)


def test_encodings_dictionary_for_text_and_dates_deltas_for_numbers():
    schema = arrow_schema([Column("id", "bigint"), Column("ticker", "text"),
                           Column("timestamp", "timestamp with time zone"),
                           Column("price", "numeric(18,6)"), Column("volume", "numeric(20,4)"),
                           Column("expiration_date", "date"), Column("lag_seconds", "double precision")])
    dictionary, encoding = encodings(schema)
    assert set(dictionary) == {"ticker", "expiration_date", "volume"}
    assert encoding == {"id": "DELTA_BINARY_PACKED", "timestamp": "DELTA_BINARY_PACKED",
                        "price": "DELTA_BINARY_PACKED", "lag_seconds": "BYTE_STREAM_SPLIT"}


ROWS = [(1, "SPY", datetime(2026, 12, 2, 14, 30, 0, 123456, tzinfo=UTC), Decimal("500.120000"), None,
         date(2026, 12, 2)),
        (2, "QQQ", datetime(2026, 12, 2, 14, 30, 1, tzinfo=UTC), Decimal("0.000001"), 7, date(2026, 12, 3))]
COLUMNS = [Column("id", "bigint"), Column("ticker", "text"), Column("timestamp", "timestamp with time zone"),
           Column("price", "numeric(18,6)"), Column("size", "integer"), Column("day", "date")]


def test_the_client_checksum_is_order_independent_and_sees_every_value():
    one, two = Tally(), Tally()
    one.add(ROWS)
    two.add(list(reversed(ROWS)))
    assert (one.rows, one.checksum) == (two.rows, two.checksum) == (2, one.checksum)
    for changed in ((1, "SPY", ROWS[0][2], Decimal("500.120001"), None, ROWS[0][5]), (*ROWS[0][:4], 0, ROWS[0][5])):
        other = Tally()
        other.add([changed, ROWS[1]])
        assert other.checksum != one.checksum
    assert len(one.checksum) == 16


def test_rows_through_arrow_come_back_as_the_same_values_and_the_same_checksum():
    batch = batch_from_rows(ROWS, arrow_schema(COLUMNS))
    assert list(batch_rows(batch)) == ROWS
    direct, through = Tally(), Tally()
    direct.add(ROWS)
    through.add(batch_rows(batch))
    assert through.checksum == direct.checksum
    # A time in another zone is the same instant, and sums the same.
    new_york = [(*ROWS[0][:2], ROWS[0][2].astimezone(archive.NEW_YORK), *ROWS[0][3:])]
    a, b = Tally(), Tally()
    a.add(new_york)
    b.add(ROWS[:1])
    assert a.checksum == b.checksum


def test_only_complete_days_with_rows_and_no_matching_archive_are_archived():
    today = date(2026, 12, 7)
    parts = [("equity_data", date(2026, 12, 4), 10, "1"), ("equity_data", date(2026, 12, 5), 0, "0"),
             ("equity_data", date(2026, 12, 7), 5, "9"), ("indicators", date(2026, 12, 4), 3, "2"),
             ("equity_data", date(2026, 12, 3), 4, "changed"), ("equity_data", date(2026, 12, 8), 1, "x")]
    done = {("indicators", date(2026, 12, 4), 3, "2"), ("equity_data", date(2026, 12, 3), 4, "before")}
    assert days_to_archive(parts, done, today) == [("equity_data", date(2026, 12, 3)),
                                                   ("equity_data", date(2026, 12, 4))]


BASE = {"STREAMING_VAR": "/tmp/streaming-archive-unit"}


def test_the_archive_settings_default_to_a_local_directory_under_data_dir():
    config = load(BASE)
    assert config.archive_dir == Path("/tmp/streaming-archive-unit/data/archive")
    assert (config.archive_s3_url, config.archive_s3_endpoint, config.archive_s3_region) == (None, None, "us-east-1")
    assert isinstance(archive.destination(config), LocalDestination)


def test_an_s3_archive_is_a_bucket_path_style_at_its_endpoint():
    config = load({**BASE, "ARCHIVE_S3_URL": "s3://market-archive/streaming/", "ARCHIVE_S3_ENDPOINT":
                   "https://ref.supabase.co/storage/v1/s3", "ARCHIVE_S3_ACCESS_KEY_ID": "id",
                   "ARCHIVE_S3_SECRET_ACCESS_KEY": "secret", "ARCHIVE_S3_REGION": "eu-west-2"})
    assert config.archive_s3_url == "s3://market-archive/streaming"
    made = []
    dest = archive.destination(config, lambda *args: made.append(args) or "client")
    assert made == [("https://ref.supabase.co/storage/v1/s3", "eu-west-2", "id", "secret")]
    assert (dest.bucket, dest.prefix, dest.client) == ("market-archive", "streaming", "client")
    client = archive.s3_client("http://127.0.0.1:9", "us-east-1", "id", "secret")
    assert client.meta.config.s3["addressing_style"] == "path"


@pytest.mark.parametrize("env, says", [
    ({"ARCHIVE_S3_URL": "https://bucket/x"}, "ARCHIVE_S3_URL='https://bucket/x' is not an S3 URL"),
    ({"ARCHIVE_S3_URL": "s3://Bad_Bucket"}, "is not an S3 URL"),
    ({"ARCHIVE_S3_URL": "s3://ab"}, "is not an S3 URL"),
    ({"ARCHIVE_S3_URL": "s3://a..b"}, "is not an S3 URL"),
    ({"ARCHIVE_S3_URL": "s3://192.168.1.10"}, "is not an S3 URL"),
    ({"ARCHIVE_S3_ENDPOINT": "minio:9000"}, "is not an http(s) URL"),
    ({"ARCHIVE_S3_ACCESS_KEY_ID": "id"}, "ARCHIVE_S3_ACCESS_KEY_ID is set but ARCHIVE_S3_SECRET_ACCESS_KEY is not"),
    ({"ARCHIVE_S3_SECRET_ACCESS_KEY": "hush"}, "ARCHIVE_S3_SECRET_ACCESS_KEY is set but ARCHIVE_S3_ACCESS_KEY_ID"),
])
def test_bad_archive_settings_are_refused_naming_the_variable(env, says):
    with pytest.raises(ConfigError) as refused:
        load({**BASE, **env})
    assert says in str(refused.value)
    assert "hush" not in str(refused.value)


def test_the_secret_is_masked():
    from common.config import BY_NAME

    assert BY_NAME["ARCHIVE_S3_SECRET_ACCESS_KEY"].secret
