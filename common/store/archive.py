"""`make archive` / `make restore`: whole New York days of the partitioned tables as verified Parquet, and back.

Before a day's partition is dropped (retention, or the storage budget), its
rows are kept elsewhere: here. SQL 025 holds the rule on the database's
side: `drop_archived_day` and `cleanup_old_equity_data` drop a partition
only when it equals a row of `archive_log`, which this module writes only
after the file was read back from where it is kept and found equal.

Layout (hive style, read as is by DuckDB, polars, pandas and pyarrow):

    {root}/table={table}/day={YYYY-MM-DD}/part-0.parquet
    {root}/table={table}/day={YYYY-MM-DD}/part-before-{YYYYMMDDTHHMMSSZ}.parquet

A day's archive is every file in its folder; they never share a row. Most
days are one piece, `part-0`: the whole partition as it was. A day that
alone is more than the storage budget is trimmed as it goes (`trim_day`,
common/store/budget.py): its rows before an instant are a `part-before-`
piece, deleted from Postgres once verified, and what remains is the day's
`part-0` when it is past. Reading `table=…/day=…/*.parquet` gives the day.

`root` is ARCHIVE_DIR (default DATA_DIR/archive) or, with ARCHIVE_S3_URL,
s3://bucket/prefix (the local directory is then only the staging, emptied
after each verified upload). Every column of the table, ids and
`inserted_at` too: timestamptz as timestamp[us, UTC], numeric(p,s) as
decimal128(p,s) (lossless; stored as INT64 when p <= 18), text, int, date.
Rows are sorted by the table's key (ticker, timestamp, ...) so that
neighbours are alike, and written zstd-compressed with dictionaries for text
and dates, DELTA_BINARY_PACKED for integers, times and decimals, and
BYTE_STREAM_SPLIT for floats: about 10.5 B a row of `equity_data`, 7.4 of
`option_prices` (`tests/archive_bench.py`). The file's footer carries the
table, the day, the row count and both checksums below.

Verification. One REPEATABLE READ transaction asks `partition_checksum`
(SQL: the sum of the first 64 bits of md5 of each row's text) and reads the
rows, from one snapshot: the SQL checksum describes exactly the rows
exported. The rows are read through a server-side cursor, `FETCH_VALUES`
values at a time, each fetch one Parquet row group, so memory stays bounded
whatever the day's size. While reading, a second, client-side checksum is
summed over the rows as Python values (`row_digest`: blake2b of each row's
msgpack, summed mod 2**64, so order does not matter). Then the file is read
back from its destination (downloaded back from S3) and the client checksum
and row count summed again from it; only when both agree is the
`archive_log` row (rows, SQL checksum, location, bytes) inserted. Any
failure raises an `ArchiveError` naming what failed, leaves no
`archive_log` row, and deletes nothing from Postgres.

Restore makes the day's partition, loads every piece of the day into it in
one transaction (every column, ids included) and commits only if the
partition's `partition_checksum` then equals the sum of the pieces' footers
(the checksum is a sum over rows): the rows are the archived ones exactly. A
partition that already equals the archive is left as it is (twice is once);
one holding other rows is refused. A day restored from several pieces is
recorded in `archive_log` as one archive, its folder, so that it may be
dropped again as it is; if it is written to after that, archiving it again
is refused (a whole piece would overlap the others) and says what to do.

Functional core (layout, types, encodings, checksums, what to archive),
imperative shell (`archive_day`, `restore_day`, `main`); the connection, the
destination, the S3 client and the clock are all passed in.
"""

from __future__ import annotations

import argparse
import hashlib
import importlib.abc
import logging
import os
import re
import sys
import tempfile
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import date, datetime, time as clock, timedelta, timezone
from pathlib import Path
from typing import Any, Protocol

import msgspec
import psycopg
import pyarrow as pa
import pyarrow.parquet as pq

from common.config import Config, ConfigError, load
from common.durable import replace_durably
from common.feed.market_hours import NEW_YORK
from common.store.connection import open_connection, reason

log = logging.getLogger("archive")

FILE_NAME = "part-0.parquet"
#: Values (rows x columns) per fetch: ~10 MB of Python objects (4,300 rows of option_prices, 9,000 of equity_data).
FETCH_VALUES = 100_000
MAX_FETCH_ROWS = 50_000
#: Values per Parquet row group, gathered as Arrow from several fetches (~4 MB; the writer's own buffers grow
#: with it): 10,800 rows of option_prices, 22,700 of equity_data. Four times as many save 2 % of the bytes.
ROW_GROUP_VALUES = 250_000
#: zstd level 3: most of level 9's size at a third of its CPU.
COMPRESSION_LEVEL = 3
#: Each checksum and count of the day is kept in the file's footer under these keys.
META = "streaming."
#: Sums are taken modulo 2**64.
_MASK = (1 << 64) - 1
#: Neighbours alike: each table's rows in this order (then by id).
SORT_KEYS = {
    "equity_data": ("ticker", "timestamp", "day_volume"),
    "index_levels": ("ticker", "timestamp"),
    "indicators": ("ticker", "timestamp", "day_volume"),
    "option_prices": ("ticker", "expiration_date", "option_type", "strike_price", "timestamp"),
    "equity_bars": ("ticker", "timestamp"),
    "equity_quotes": ("ticker", "timestamp"),
    "streaming_metrics": ("actor", "timestamp"),
    "stream_metrics": ("stream", "timestamp"),
}
#: Exporting and checksumming a day reads all of it: give a large day time.
STATEMENT_TIMEOUT_MS = 600_000
_DAY = re.compile(r"\d{4}-\d{2}-\d{2}")


class ArchiveError(RuntimeError):
    """An archive or a restore did not happen; the message says what failed. Nothing was deleted."""


class ArchiveFailed(ArchiveError):
    """A step failed: the database, writing the file, the upload, the download."""


class DestinationUnreachable(ArchiveFailed):
    """The archive's directory cannot be written, or its bucket cannot be reached."""


class ArchiveMismatch(ArchiveError):
    """The file read back, or the rows restored, differ from the rows exported: no archive_log row was written."""


class RestoreRefused(ArchiveError):
    """The day's partition already holds rows other than the archive's: nothing was changed."""


# ---------------------------------------------------------------- the functional core


@dataclass(frozen=True)
class Column:
    name: str
    sql_type: str  # as format_type() spells it: "numeric(18,6)", "timestamp with time zone", ...


@dataclass(frozen=True)
class ArchivedDay:
    table: str
    day: date
    rows: int
    checksum: str  # partition_checksum's, as archive_log keeps it
    location: str
    bytes: int
    cpu_seconds: float = 0.0
    #: False when archive_log already held a matching row and nothing was done.
    written: bool = True


@dataclass(frozen=True)
class RestoredDay:
    table: str
    day: date
    rows: int
    #: False when the partition already held the archive's rows.
    loaded: bool


def day_prefix(table: str, day: date) -> str:
    """The folder of a table's day under the archive's root: every piece of that day is a file in it."""
    return f"table={table}/day={day.isoformat()}/"


def object_key(table: str, day: date, before: datetime | None = None) -> str:
    """A piece's path under the archive's root: the whole partition as it was (`part-0`), or the rows trimmed off
    the day before the instant `before` (`part-before-YYYYMMDDTHHMMSSZ`, in UTC: unique within a day, even the
    one whose clocks go back)."""
    if before is None:
        return day_prefix(table, day) + FILE_NAME
    return day_prefix(table, day) + f"part-before-{before.astimezone(timezone.utc):%Y%m%dT%H%M%SZ}.parquet"


def parse_day(text: str) -> date:
    """YYYY-MM-DD, or a ValueError saying so."""
    if not _DAY.fullmatch(text.strip()):
        raise ValueError(f"{text!r} is not a day; accepted: YYYY-MM-DD")
    try:
        return date.fromisoformat(text.strip())
    except ValueError:
        raise ValueError(f"{text!r} is not a day of the calendar; accepted: YYYY-MM-DD") from None


def day_bounds(day: date) -> tuple[datetime, datetime]:
    """The New York day as [start, end) in UTC: a day's partition's bounds (23 or 25 hours when the clocks change)."""
    start = datetime.combine(day, clock(), NEW_YORK)
    end = datetime.combine(day + timedelta(days=1), clock(), NEW_YORK)
    return start.astimezone(timezone.utc), end.astimezone(timezone.utc)


def new_york_today(now: datetime) -> date:
    return now.astimezone(NEW_YORK).date()


def split_s3_url(url: str) -> tuple[str, str]:
    """s3://bucket/prefix -> (bucket, prefix without slashes at either end)."""
    if not url.startswith("s3://"):
        raise ValueError(f"{url!r} is not an s3:// URL")
    bucket, _, prefix = url[len("s3://"):].partition("/")
    return bucket, prefix.strip("/")


_NUMERIC = re.compile(r"numeric\((\d+),(\d+)\)")
_SIMPLE = {
    "bigint": pa.int64(),
    "integer": pa.int32(),
    "smallint": pa.int16(),
    "text": pa.string(),
    "date": pa.date32(),
    "timestamp with time zone": pa.timestamp("us", tz="UTC"),
    "timestamp without time zone": pa.timestamp("us"),
    "double precision": pa.float64(),
    "real": pa.float32(),
    "boolean": pa.bool_(),
}


def arrow_type(sql_type: str) -> pa.DataType:
    """The Arrow type that holds every value of a Postgres column type exactly; ArchiveFailed for any other type."""
    if sql_type in _SIMPLE:
        return _SIMPLE[sql_type]
    if sql_type.startswith("character varying") or sql_type.startswith("character("):
        return pa.string()
    if match := _NUMERIC.fullmatch(sql_type):
        precision, scale = int(match.group(1)), int(match.group(2))
        if precision <= 38:
            return pa.decimal128(precision, scale)
    raise ArchiveFailed(f"no lossless Parquet type for the column type {sql_type!r}")


def arrow_schema(columns: Sequence[Column]) -> pa.Schema:
    return pa.schema([pa.field(c.name, arrow_type(c.sql_type)) for c in columns])


def encodings(schema: pa.Schema) -> tuple[list[str], dict[str, str]]:
    """(the columns dictionary-encoded, every other column's encoding): dictionaries for text and dates (few
    distinct values), deltas for integers, times and decimals stored as integers (sorted rows: small steps),
    byte-stream split for floats."""
    dictionary, encoding = [], {}
    for field in schema:
        kind = field.type
        if pa.types.is_string(kind) or pa.types.is_date(kind) or pa.types.is_boolean(kind):
            dictionary.append(field.name)
        elif pa.types.is_integer(kind) or pa.types.is_timestamp(kind):
            encoding[field.name] = "DELTA_BINARY_PACKED"
        elif pa.types.is_decimal(kind):
            if kind.precision <= 18:
                encoding[field.name] = "DELTA_BINARY_PACKED"
            else:
                dictionary.append(field.name)
        elif pa.types.is_floating(kind):
            encoding[field.name] = "BYTE_STREAM_SPLIT"
        else:
            dictionary.append(field.name)
    return dictionary, encoding


_encode = msgspec.msgpack.Encoder().encode


def row_digest(row: Sequence[Any]) -> int:
    """64 bits of blake2b over the row's values as msgpack: Decimals as their text (the column's scale, as
    Postgres and the Parquet decimal both give it), aware datetimes as the instant, dates as ISO text."""
    return int.from_bytes(hashlib.blake2b(_encode(row), digest_size=8).digest(), "little")


@dataclass
class Tally:
    """The client-side checksum: a row count and the sum of the rows' digests mod 2**64 (order-independent)."""

    rows: int = 0
    total: int = 0

    def add(self, rows: Iterable[Sequence[Any]]) -> None:
        count, total = 0, self.total
        for row in rows:
            total += row_digest(row)
            count += 1
        self.rows += count
        self.total = total & _MASK

    @property
    def checksum(self) -> str:
        return f"{self.total:016x}"


def batch_from_rows(rows: Sequence[Sequence[Any]], schema: pa.Schema) -> pa.RecordBatch:
    columns = list(zip(*rows)) if rows else [() for _ in schema]
    return pa.record_batch([pa.array(values, type=field.type) for values, field in zip(columns, schema)],
                           schema=schema)


def batch_rows(batch: pa.RecordBatch | pa.Table) -> Iterator[tuple[Any, ...]]:
    """A batch's rows as tuples of Python values, the types psycopg gives (Decimal, aware datetime, date...)."""
    return zip(*(column.to_pylist() for column in batch.columns))


def _slices(batch: pa.RecordBatch, size: int) -> Iterator[Iterator[tuple[Any, ...]]]:
    for offset in range(0, len(batch), size):
        yield batch_rows(batch.slice(offset, size))


def file_tally(path: Path) -> tuple[Tally, dict[str, str]]:
    """The client checksum and the footer's metadata of a Parquet file, read one row group at a time."""
    parquet = pq.ParquetFile(path)
    tally = Tally()
    for batch in parquet.iter_batches(batch_size=read_rows(parquet)):
        tally.add(batch_rows(batch))
    return tally, footer(parquet)


def read_rows(parquet: pq.ParquetFile) -> int:
    """Rows per batch read back: as many values as a fetch."""
    return max(1, min(MAX_FETCH_ROWS, FETCH_VALUES // len(parquet.schema_arrow.names)))


def footer(parquet: pq.ParquetFile) -> dict[str, str]:
    metadata = parquet.metadata.metadata or {}
    return {key.decode()[len(META):]: value.decode() for key, value in metadata.items()
            if key.decode().startswith(META)}


def days_to_archive(partitions: Iterable[tuple[str, date, int, str]], archived: set[tuple[str, date, int, str]],
                    today: date) -> list[tuple[str, date]]:
    """Of (table, day, rows, checksum) per partition: the complete days (before today) with rows and no matching
    archive_log row, in day order."""
    return sorted(((table, day) for table, day, rows, checksum in partitions
                   if day < today and rows > 0 and (table, day, rows, checksum) not in archived),
                  key=lambda item: (item[1], item[0]))


# ---------------------------------------------------------------- destinations


class Destination(Protocol):
    """Where archives are kept, each piece under its `object_key`: `put` a finished local file there, `fetch` one
    back to read, `pieces` lists a day's."""

    def location(self, key: str) -> str: ...

    def staging(self, key: str) -> Path: ...

    def put(self, staged: Path, key: str) -> str: ...

    def fetch(self, key: str, work: Path) -> Path: ...

    def finished(self, staged: Path, fetched: Path) -> None: ...

    def discard(self, key: str) -> None: ...

    def pieces(self, table: str, day: date) -> list[str]: ...

    def check(self) -> None: ...


@dataclass(frozen=True)
class LocalDestination:
    """A directory: the file is the archive. Written beside its place and renamed into it, so a reader never
    sees half a file."""

    root: Path

    def location(self, key: str) -> str:
        return str(self.root / key)

    def staging(self, key: str) -> Path:
        final = Path(self.location(key))
        final.parent.mkdir(parents=True, exist_ok=True)
        return final.with_name(f".{final.name}.{os.getpid()}.tmp")

    def put(self, staged: Path, key: str) -> str:
        final = Path(self.location(key))
        replace_durably(staged, final)
        return str(final)

    def fetch(self, key: str, work: Path) -> Path:
        final = Path(self.location(key))
        if not final.is_file():
            raise ArchiveFailed(f"no archive at {final}")
        return final

    def finished(self, staged: Path, fetched: Path) -> None:
        staged.unlink(missing_ok=True)

    def discard(self, key: str) -> None:
        Path(self.location(key)).unlink(missing_ok=True)

    def pieces(self, table: str, day: date) -> list[str]:
        folder = self.root / day_prefix(table, day)
        return sorted(day_prefix(table, day) + path.name for path in folder.glob("part-*.parquet"))

    def check(self) -> None:
        try:
            self.root.mkdir(parents=True, exist_ok=True)
            probe = tempfile.NamedTemporaryFile(dir=self.root, prefix=".probe")
            probe.close()
        except OSError as error:
            raise DestinationUnreachable(f"the archive directory {self.root} is not writable: {error}") from None


@dataclass(frozen=True)
class S3Destination:
    """An S3-compatible bucket; `staging_root` holds the file only until its upload is verified."""

    bucket: str
    prefix: str
    client: Any  # a boto3 S3 client
    staging_root: Path

    def object_name(self, key: str) -> str:
        return f"{self.prefix}/{key}" if self.prefix else key

    def location(self, key: str) -> str:
        return f"s3://{self.bucket}/{self.object_name(key)}"

    def staging(self, key: str) -> Path:
        directory = self.staging_root / ".staging"
        directory.mkdir(parents=True, exist_ok=True)
        return directory / f"{key.replace('/', '-')}-{os.getpid()}"

    def put(self, staged: Path, key: str) -> str:
        try:
            self.client.upload_file(str(staged), self.bucket, self.object_name(key), Config=_transfer())
        except Exception as error:
            raise ArchiveFailed(f"upload to {self.location(key)} failed: {_one_line(error)}") from error
        return self.location(key)

    def fetch(self, key: str, work: Path) -> Path:
        target = work / f"{key.replace('/', '-')}-{os.getpid()}.fetched"
        try:
            self.client.download_file(self.bucket, self.object_name(key), str(target), Config=_transfer())
        except Exception as error:
            target.unlink(missing_ok=True)
            raise ArchiveFailed(f"download of {self.location(key)} failed: {_one_line(error)}") from error
        return target

    def finished(self, staged: Path, fetched: Path) -> None:
        staged.unlink(missing_ok=True)
        fetched.unlink(missing_ok=True)

    def discard(self, key: str) -> None:
        try:
            self.client.delete_object(Bucket=self.bucket, Key=self.object_name(key))
        except Exception as error:  # the archive_log row is what counts: a stray object is only a stray object
            log.warning("could not remove a failed upload",
                        extra={"location": self.location(key), "error": _one_line(error)})

    def pieces(self, table: str, day: date) -> list[str]:
        folder = self.object_name(day_prefix(table, day))
        names: list[str] = []
        try:
            for page in self.client.get_paginator("list_objects_v2").paginate(Bucket=self.bucket, Prefix=folder):
                names += [item["Key"] for item in page.get("Contents", ())]
        except Exception as error:
            raise ArchiveFailed(f"listing s3://{self.bucket}/{folder} failed: {_one_line(error)}") from error
        return sorted(day_prefix(table, day) + name.rpartition("/")[2] for name in names
                      if name.rpartition("/")[2].startswith("part-") and name.endswith(".parquet"))

    def check(self) -> None:
        try:
            self.client.head_bucket(Bucket=self.bucket)
        except Exception as error:
            raise DestinationUnreachable(f"the bucket s3://{self.bucket} cannot be reached: "
                                         f"{_one_line(error)}") from None


def _transfer() -> Any:
    """Two threads and 8 MiB parts: the archive must fit beside the actors in 512 MB."""
    from boto3.s3.transfer import TransferConfig

    return TransferConfig(multipart_threshold=64 << 20, multipart_chunksize=8 << 20, max_concurrency=2)


def _one_line(error: BaseException) -> str:
    return " ".join(str(error).split()) or type(error).__name__


def s3_client(endpoint: str | None, region: str, key_id: str | None, secret: str | None) -> Any:
    """A boto3 S3 client; path-style addressing with an endpoint (Supabase Storage, R2, MinIO), checksums only
    where the API requires them (S3-compatible servers do not all know AWS's newer ones)."""
    import boto3
    from botocore.config import Config as BotoConfig

    settings = BotoConfig(region_name=region, connect_timeout=10, read_timeout=60, retries={"max_attempts": 3},
                          s3={"addressing_style": "path"} if endpoint else {},
                          request_checksum_calculation="when_required",
                          response_checksum_validation="when_required")
    return boto3.client("s3", endpoint_url=endpoint, aws_access_key_id=key_id, aws_secret_access_key=secret,
                        config=settings)


def destination(config: Config, client_factory: Callable[..., Any] = s3_client) -> Destination:
    """The configured destination: the bucket if ARCHIVE_S3_URL is set, else the directory."""
    if not config.archive_s3_url:
        return LocalDestination(config.archive_dir)
    bucket, prefix = split_s3_url(config.archive_s3_url)
    client = client_factory(config.archive_s3_endpoint, config.archive_s3_region, config.archive_s3_access_key_id,
                            config.archive_s3_secret_access_key)
    return S3Destination(bucket, prefix, client, config.archive_dir)


# ---------------------------------------------------------------- the imperative shell


def table_columns(conn: psycopg.Connection, table: str) -> list[Column]:
    rows = conn.execute(
        "SELECT a.attname, format_type(a.atttypid, a.atttypmod) FROM pg_catalog.pg_attribute a"
        " WHERE a.attrelid = to_regclass(%s) AND a.attnum > 0 AND NOT a.attisdropped ORDER BY a.attnum",
        (f"public.{table}",)).fetchall()
    if not rows:
        raise ArchiveFailed(f"public.{table} has no columns: is it migrated?")
    return [Column(name, sql_type) for name, sql_type in rows]


def partitioned_tables(conn: psycopg.Connection) -> list[str]:
    """The partitioned tables in public, from the catalog (the writer role may not call partitioned_tables())."""
    return [name for (name,) in conn.execute(
        "SELECT c.relname::text FROM pg_catalog.pg_partitioned_table p"
        " JOIN pg_catalog.pg_class c ON c.oid = p.partrelid WHERE c.relnamespace = 'public'::regnamespace"
        " ORDER BY 1").fetchall()]


def partition_checksum(conn: psycopg.Connection, table: str, day: date,
                       before: datetime | None = None) -> tuple[int, str]:
    """The rows and SQL checksum of the day's partition (of its rows before `before`, if given)."""
    rows, checksum = conn.execute("SELECT row_count, checksum FROM public.partition_checksum(%s, %s, %s)",
                                  (table, day, before)).fetchone()
    return rows, checksum


def matching_archive(conn: psycopg.Connection, table: str, day: date, rows: int, checksum: str) -> ArchivedDay | None:
    found = conn.execute("SELECT location, file_bytes FROM public.archive_log WHERE table_name = %s AND day = %s"
                         " AND row_count = %s AND checksum = %s AND trimmed_before IS NULL"
                         " ORDER BY archived_at DESC LIMIT 1",
                         (table, day, rows, checksum)).fetchone()
    return None if found is None else ArchivedDay(table, day, rows, checksum, found[0], found[1], written=False)


def _quoted(names: Iterable[str]) -> str:
    return ", ".join(f'"{name}"' for name in names)


def _select(table: str, columns: Sequence[Column]) -> str:
    names = {c.name for c in columns}
    order = [name for name in SORT_KEYS.get(table, ("timestamp",)) if name in names] + ["id"] * ("id" in names)
    return (f'SELECT {_quoted(c.name for c in columns)} FROM public."{table}"'
            f' WHERE "timestamp" >= %s AND "timestamp" < %s ORDER BY {_quoted(order)}')


def export_day(conn: psycopg.Connection, table: str, day: date, target: Path,
               fetch_values: int = FETCH_VALUES, before: datetime | None = None) -> tuple[int, str, Tally]:
    """The day's rows (those before `before`, if given) into the Parquet file `target`, from one snapshot:
    (SQL rows, SQL checksum, client tally)."""
    columns = table_columns(conn, table)
    schema = arrow_schema(columns)
    dictionary, encoding = encodings(schema)
    fetch = max(1, min(MAX_FETCH_ROWS, fetch_values // len(columns)))
    group_rows = max(fetch, ROW_GROUP_VALUES // len(columns))
    tally = Tally()
    start, end = day_bounds(day)
    if before is not None:
        end = min(end, before)
    with conn.transaction():
        conn.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
        conn.execute("SET LOCAL TimeZone = 'UTC'")
        rows, checksum = partition_checksum(conn, table, day, before)
        schema = schema.with_metadata({f"{META}table": table, f"{META}day": day.isoformat(),
                                       f"{META}rows": str(rows), f"{META}checksum": checksum}
                                      | ({} if before is None else {f"{META}before": before.isoformat()}))
        with pq.ParquetWriter(target, schema, compression="zstd", compression_level=COMPRESSION_LEVEL,
                              use_dictionary=dictionary, column_encoding=encoding, store_decimal_as_integer=True,
                              write_statistics=True) as writer, conn.cursor(name=f"archive_{table}") as cursor:
            cursor.itersize = fetch
            cursor.execute(_select(table, columns), (start, end))
            group: list[pa.RecordBatch] = []
            while True:
                batch = cursor.fetchmany(fetch)
                if batch:
                    tally.add(batch)
                    group.append(batch_from_rows(batch, schema))
                grouped = sum(len(part) for part in group)
                if group and (grouped >= group_rows or not batch):
                    writer.write_table(pa.Table.from_batches(group, schema), row_group_size=grouped)
                    group = []
                if not batch:
                    break
                del batch
            if tally.rows == 0:
                writer.write_batch(batch_from_rows([], schema))
            # The client checksum rides in the footer too: a reader can check a file alone.
            writer.add_key_value_metadata({f"{META}client_checksum": tally.checksum})
    if tally.rows != rows:
        raise ArchiveMismatch(f"{table} {day}: partition_checksum counted {rows} rows but {tally.rows} were read "
                              "from the same snapshot")
    return rows, checksum, tally


def _export_verified(conn: psycopg.Connection, table: str, day: date, dest: Destination, key: str,
                     before: datetime | None, fetch_values: int) -> tuple[int, str, str, int]:
    """Export a piece, put it at `key` and read it back: (rows, SQL checksum, location, bytes) once the file in
    its place equals the rows exported. On any failure the piece is removed from the destination and the error
    raised; the caller records the piece only after this returns, and removes it if recording fails."""
    staged = dest.staging(key)
    placed = False
    what = f"{table} {day}" + ("" if before is None else f" before {before.isoformat()}")
    try:
        try:
            rows, checksum, tally = export_day(conn, table, day, staged, fetch_values, before)
        except psycopg.Error as error:
            raise ArchiveFailed(f"{what}: reading the rows failed: {reason(error, limit=None)}") from error
        except (OSError, pa.ArrowException) as error:
            raise ArchiveFailed(f"{what}: writing {staged} failed: {_one_line(error)}") from error
        location = dest.put(staged, key)
        placed = True
        with tempfile.TemporaryDirectory(prefix="archive", dir=staged.parent) as work:
            fetched = dest.fetch(key, Path(work))
            size = fetched.stat().st_size
            try:
                again, meta = file_tally(fetched)
            except (OSError, pa.ArrowException) as error:
                raise ArchiveMismatch(f"{what}: {location} cannot be read back: {_one_line(error)}") from error
            if (again.rows, again.checksum) != (tally.rows, tally.checksum) or meta.get("checksum") != checksum:
                raise ArchiveMismatch(f"{what}: {location} read back holds {again.rows} rows (checksum "
                                      f"{again.checksum}) but {tally.rows} were exported (checksum {tally.checksum})")
            dest.finished(staged, fetched)
    except BaseException:
        staged.unlink(missing_ok=True)
        if placed:
            dest.discard(key)
        raise
    return rows, checksum, location, size


def archive_day(conn: psycopg.Connection, table: str, day: date, dest: Destination,
                fetch_values: int = FETCH_VALUES) -> ArchivedDay:
    """Archive one table's New York day to `dest`, verified, and record it in archive_log (see the docstring).
    Idempotent: a day whose partition already equals an archive_log row is left alone and that row returned."""
    cpu = time.process_time()
    try:
        rows, checksum = partition_checksum(conn, table, day)
        if (done := matching_archive(conn, table, day, rows, checksum)) is not None:
            return done
        restored = conn.execute("SELECT location FROM public.archive_log WHERE table_name = %s AND day = %s"
                                " AND trimmed_before IS NULL AND location LIKE '%%/' LIMIT 1", (table, day)).fetchone()
    except psycopg.Error as error:
        raise ArchiveFailed(f"{table} {day}: {reason(error, limit=None)}") from error
    if restored:
        raise ArchiveFailed(f"{table} {day} was restored from pieces at {restored[0]} and has changed since: a whole "
                            "piece would overlap them; move that folder aside and archive the day again")
    key = object_key(table, day)
    rows, checksum, location, size = _export_verified(conn, table, day, dest, key, None, fetch_values)
    try:
        conn.execute("INSERT INTO public.archive_log (table_name, day, row_count, checksum, location, file_bytes)"
                     " VALUES (%s, %s, %s, %s, %s, %s) ON CONFLICT DO NOTHING",
                     (table, day, rows, checksum, location, size))
    except psycopg.Error as error:
        dest.discard(key)
        raise ArchiveFailed(f"{table} {day}: recording the archive failed: {reason(error, limit=None)}") from error
    done = ArchivedDay(table, day, rows, checksum, location, size, time.process_time() - cpu)
    log.info("archived", extra={"table": table, "day": day.isoformat(), "rows": rows, "location": location,
                                "bytes": size, "cpu_s": round(done.cpu_seconds, 3)})
    return done


def trim_day(conn: psycopg.Connection, table: str, day: date, before: datetime, dest: Destination,
             fetch_values: int = FETCH_VALUES) -> ArchivedDay | None:
    """Archive the rows of a day's partition before `before` as a piece of the day, verified, then delete exactly
    them (`trim_archived_rows` checks the rows it deletes against the piece and records it, in one statement) and
    VACUUM the partition so that the day's later rows reuse their room. None when there were no such rows.

    For a day that alone is more than the storage budget: see common/store/budget.py. A row that arrives later
    with an earlier time stays in the partition and goes with the day's whole-partition piece."""
    cpu = time.process_time()
    try:
        rows, _ = partition_checksum(conn, table, day, before)
    except psycopg.Error as error:
        raise ArchiveFailed(f"{table} {day}: {reason(error, limit=None)}") from error
    if not rows:
        return None
    key = object_key(table, day, before)
    rows, checksum, location, size = _export_verified(conn, table, day, dest, key, before, fetch_values)
    try:
        conn.execute("SELECT public.trim_archived_rows(%s, %s, %s, %s, %s, %s, %s)",
                     (table, day, before, rows, checksum, location, size))
    except psycopg.Error as error:
        dest.discard(key)
        raise ArchiveFailed(f"{table} {day}: the rows before {before.isoformat()} were not deleted: "
                            f"{reason(error, limit=None)}") from error
    vacuum(conn, table, day)
    done = ArchivedDay(table, day, rows, checksum, location, size, time.process_time() - cpu)
    log.info("trimmed", extra={"table": table, "day": day.isoformat(), "before": before.isoformat(), "rows": rows,
                               "location": location, "bytes": size, "cpu_s": round(done.cpu_seconds, 3)})
    return done


def vacuum(conn: psycopg.Connection, table: str, day: date) -> None:
    """Make a trimmed partition's room reusable now, its indexes' too. A B-tree page that VACUUM empties is
    reused only once every transaction that might still read it is gone (it must be older than the next
    transaction id at the time), which the first VACUUM cannot see: a transaction id is taken in between, and
    the second VACUUM hands the pages back. Without it an index's emptied pages wait for the next trim, an hour
    of the index's growth more than the budget needs.

    Only the table's owner may vacuum it (the local Postgres of `make run`); a writer login that is not gets
    Postgres's warning, and autovacuum does it, as on Supabase. Never fatal: the rows are archived and deleted."""
    name = f'streaming_partitions."{table}_{day:%Y%m%d}"'
    try:
        conn.execute(f"VACUUM {name}")
        conn.execute("SELECT pg_current_xact_id()")
        conn.execute(f"VACUUM {name}")
    except psycopg.Error as error:
        log.warning("the trimmed partition was not vacuumed; autovacuum will",
                    extra={"table": table, "day": day.isoformat(), "reason": reason(error, limit=None)})


def restore_day(conn: psycopg.Connection, table: str, day: date, source: Destination,
                work: Path | None = None) -> RestoredDay:
    """Load one archived day, every piece of it, back into its partition, exactly (ids too), in one transaction;
    see the docstring."""
    keys = source.pieces(table, day)
    if not keys:
        raise ArchiveFailed(f"no archive of {table} {day} at {source.location(day_prefix(table, day))}")
    with tempfile.TemporaryDirectory(prefix="restore", dir=work) as scratch:
        files: list[pq.ParquetFile] = []
        rows, checksum = 0, 0
        for key in keys:
            path = source.fetch(key, Path(scratch))
            try:
                parquet = pq.ParquetFile(path)
                meta = footer(parquet)
            except (OSError, pa.ArrowException) as error:
                raise ArchiveFailed(f"{table} {day}: {source.location(key)} cannot be read: "
                                    f"{_one_line(error)}") from error
            if (meta.get("table"), meta.get("day")) != (table, day.isoformat()):
                raise ArchiveMismatch(f"{table} {day}: the footer of {source.location(key)} says "
                                      f"{meta.get('table')} {meta.get('day')}")
            files.append(parquet)
            # partition_checksum is a sum over rows: the day's is the sum of its pieces'.
            rows, checksum = rows + int(meta["rows"]), checksum + int(meta["checksum"])
        total = str(checksum)
        try:
            with conn.transaction():
                conn.execute("SELECT public.create_partitions(%s, %s, %s)", (day, day, table))
                held, now = partition_checksum(conn, table, day)
                if held:
                    if (held, now) == (rows, total):
                        return RestoredDay(table, day, rows, loaded=False)
                    raise RestoreRefused(f"{table} {day} already holds {held} rows that are not the archive's "
                                         f"({rows} rows in {len(keys)} pieces): nothing restored; drop or empty "
                                         "the partition first")
                conn.execute(f'CREATE TEMP TABLE archive_restore (LIKE public."{table}") ON COMMIT DROP')
                for parquet in files:
                    _load(conn, table, parquet)
                held, now = partition_checksum(conn, table, day)
                if (held, now) != (rows, total):
                    raise ArchiveMismatch(f"{table} {day}: the restored partition has {held} rows (checksum {now}) "
                                          f"but the archive {rows} (checksum {total}): rolled back")
                if len(keys) > 1:
                    # The partition now stands for all the day's pieces: recorded as one archive of it (its
                    # folder), so that it may be dropped again without a whole-day piece overlapping them.
                    conn.execute("INSERT INTO public.archive_log (table_name, day, row_count, checksum, location,"
                                 " file_bytes) VALUES (%s, %s, %s, %s, %s, 0) ON CONFLICT DO NOTHING",
                                 (table, day, rows, total, source.location(day_prefix(table, day)).rstrip("/") + "/"))
        except psycopg.Error as error:
            raise ArchiveFailed(f"{table} {day}: restoring failed: {reason(error, limit=None)}") from error
    log.info("restored", extra={"table": table, "day": day.isoformat(), "rows": rows, "pieces": len(keys)})
    return RestoredDay(table, day, rows, loaded=True)


def _load(conn: psycopg.Connection, table: str, parquet: pq.ParquetFile) -> None:
    """One piece's rows into the table through the session's archive_restore, a row group's share at a time."""
    names = parquet.schema_arrow.names
    for batch in parquet.iter_batches(batch_size=ROW_GROUP_VALUES // len(names) // 4):
        with conn.cursor().copy(f"COPY archive_restore ({_quoted(names)}) FROM STDIN") as copy:
            for chunk in _slices(batch, read_rows(parquet)):
                for row in chunk:
                    copy.write_row(row)
        conn.execute(f'INSERT INTO public."{table}" ({_quoted(names)}) SELECT {_quoted(names)} FROM archive_restore')
        conn.execute("TRUNCATE archive_restore")


def partitions(conn: psycopg.Connection, tables: Sequence[str], today: date) -> Iterator[tuple[str, date, int, str]]:
    """(table, day, rows, checksum) of each day before `today` that has a partition of `tables`: every day of a
    day's partition, and the days with rows of a month's (sql/031: equity_bars)."""
    for table in tables:
        spans = conn.execute(
            "SELECT r.first_day, r.next_day FROM pg_catalog.pg_inherits i"
            " JOIN pg_catalog.pg_class c ON c.oid = i.inhrelid, LATERAL public.partition_days(c.relname) AS r"
            " WHERE i.inhparent = to_regclass(%s) AND r.first_day < %s ORDER BY 1", (f"public.{table}", today)).fetchall()
        for first_day, next_day in spans:
            if next_day == first_day + timedelta(days=1):
                days = [first_day]
            else:
                lower, upper = day_bounds(first_day)[0], day_bounds(next_day)[0]
                days = [day for (day,) in conn.execute(
                    f'SELECT DISTINCT ("timestamp" AT TIME ZONE \'America/New_York\')::date FROM public."{table}"'
                    ' WHERE "timestamp" >= %s AND "timestamp" < %s ORDER BY 1', (lower, upper)).fetchall()]
            for day in days:
                if day < today:
                    yield (table, day, *partition_checksum(conn, table, day))


def archived(conn: psycopg.Connection) -> set[tuple[str, date, int, str]]:
    return {tuple(row) for row in conn.execute(
        "SELECT table_name, day, row_count, checksum FROM public.archive_log WHERE trimmed_before IS NULL").fetchall()}


def _line(done: ArchivedDay) -> str:
    if not done.written:
        return f"{done.table} {done.day}: {done.rows:,} rows already archived at {done.location}\n"
    per_row = done.bytes / done.rows if done.rows else 0
    return (f"{done.table} {done.day}: {done.rows:,} rows, {done.bytes / (1 << 20):.1f} MB ({per_row:.1f} B/row), "
            f"{done.cpu_seconds:.1f} s CPU -> {done.location}\n")


class _NoPandas(importlib.abc.MetaPathFinder):
    def find_spec(self, name: str, path: object, target: object = None) -> None:
        if name == "pandas" or name.startswith("pandas."):
            raise ModuleNotFoundError("the archive command keeps pandas out", name=name)
        return None


def keep_pandas_out() -> None:
    """pyarrow imports pandas (1.5 s and 50 MB) the first time it builds an array, only to ask whether its input is
    a pandas object: never, here. In the command's own process, pandas is made absent, which pyarrow accepts."""
    if "pandas" not in sys.modules and not any(isinstance(finder, _NoPandas) for finder in sys.meta_path):
        sys.meta_path.insert(0, _NoPandas())


def main(argv: list[str] | None = None, now: Callable[[], datetime] = lambda: datetime.now(timezone.utc)) -> int:
    parser = argparse.ArgumentParser(prog="streaming-archive", description=__doc__.splitlines()[0])
    parser.add_argument("command", nargs="?", default="archive", choices=("archive", "restore"),
                        help="archive (the default) or restore")
    parser.add_argument("--day", help="YYYY-MM-DD, a New York day (archive: default every complete day not archived)")
    parser.add_argument("--table", help="one partitioned table (archive: default all)")
    args = parser.parse_args(argv)
    out = sys.stdout
    url = ""
    keep_pandas_out()
    try:
        day = parse_day(args.day) if args.day else None
        if args.command == "restore" and (day is None or not args.table):
            raise ValueError("restore takes --table and --day")
        config = load()
        url = config.database_url
        dest = destination(config)
        with open_connection(url, "streaming-archive", statement_timeout_ms=STATEMENT_TIMEOUT_MS) as conn:
            tables = partitioned_tables(conn)
            if args.table and args.table not in tables:
                raise ValueError(f"{args.table!r} is not a partitioned table; accepted: {', '.join(tables)}")
            today = new_york_today(now())
            if args.command == "restore":
                restored = restore_day(conn, args.table, day, dest)
                out.write(f"{args.table} {day}: {restored.rows:,} rows "
                          f"{'restored' if restored.loaded else 'already there'}\n")
                return 0
            dest.check()
            if day is not None:
                if day >= today:
                    raise ValueError(f"{day} is not a complete New York day yet (today is {today})")
                todo = [(table, day) for table in ([args.table] if args.table else tables)]
            else:
                todo = days_to_archive(partitions(conn, [args.table] if args.table else tables, today),
                                       archived(conn), today)
            if not todo:
                out.write("nothing to archive: every complete day with rows is archived\n")
            for table, one in todo:
                out.write(_line(archive_day(conn, table, one, dest)))
                out.flush()
    except (ValueError, ConfigError, DestinationUnreachable) as error:
        sys.stderr.write(f"archive: {error}\n")
        return 2
    except ArchiveError as error:
        sys.stderr.write(f"archive: {error}\n")
        return 1
    except psycopg.Error as error:
        sys.stderr.write(f"archive: {reason(error, url, limit=None)}\n")
        return 2 if isinstance(error, psycopg.OperationalError) else 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
