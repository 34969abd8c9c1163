"""The writer's database access: per batch, one COPY per table and one statement that stores them all.

Rows arrive as `msgspec.structs.astuple(row)`, so each table's staging
columns are the fields, in order, of the struct `common/streams.py` stores
there. A batch is COPYed into TEMP staging tables and moved with one `INSERT ... SELECT ... ON CONFLICT DO NOTHING` per
table, all of them and the consumer's offsets in one statement (data-modifying
CTEs) of one transaction: a row already stored (a replay after a restart) or
repeated within the batch is skipped without costing the rest of the batch.

Why staging, not a direct COPY into the tables: measured, a direct COPY has
to make every timestamp and decimal in Python, and an option row has ten
decimals. `python -m tests.copy_bench` (trades only) puts them close (25-row
batches: 1,106 vs 972 µs of the writer's CPU per batch, 6.5 vs 2.2 ms wall),
but over the whole feed (`make bench`, 4 tickers) the writer spent 290 µs
per stored tick with a direct COPY against 193 with this path. The SELECT
converts in SQL: epoch times to timestamptz, and float8 to numeric, which
keeps the decimal a float prints as (417.09 stays 417.090000).

Staging tables are session-local, so this needs a direct connection or
Supabase's session pooler, not the transaction pooler.
"""

from __future__ import annotations

import functools
import typing
from dataclasses import dataclass
from functools import cached_property

import msgspec
import psycopg

from common.streams import ROW_OF

_MS = "to_timestamp({} / 1000.0)"
_NS = "to_timestamp({} / 1000000000.0)"


def _greek(column: str) -> str:
    """NULL for NaN, infinity or a size numeric(18,8) cannot hold: one greek blown up
    near expiry must not abort its whole batch."""
    return f"CASE WHEN abs({column}) < 1e9 THEN {column}::numeric(18, 8) END"


#: Postgres types of the struct field types a stored record has.
_PG_TYPES = {str: "text", int: "int8", float: "float8"}


def staging_columns(record: type[msgspec.Struct]) -> tuple[tuple[str, str], ...]:
    """(field, Postgres type) of every field of `record`, in order: a stored struct's fields, said once."""
    columns = []
    for field in msgspec.structs.fields(record):
        kinds = set(typing.get_args(field.type) or (field.type,)) - {type(None)}
        if len(kinds) != 1 or next(iter(kinds)) not in _PG_TYPES:
            raise TypeError(f"{record.__name__}.{field.name}: {field.type} has no staging column type")
        columns.append((field.name, _PG_TYPES[next(iter(kinds))]))
    return tuple(columns)


@dataclass(frozen=True)
class TableSpec:
    """How rows of one struct reach one table.

    `target` is (table column, SQL expression over the staging columns); the
    staging columns are the struct's own fields (`staging_columns`), the
    struct the one `common/streams.py` stores in the table.
    """

    name: str
    target: tuple[tuple[str, str], ...]
    conflict: tuple[str, ...]

    @property
    def stage(self) -> str:
        return f"stage_{self.name}"

    @cached_property
    def staging(self) -> tuple[tuple[str, str], ...]:
        return staging_columns(ROW_OF[self.name])

    @cached_property
    def types(self) -> list[str]:
        return [kind for _, kind in self.staging]

    @cached_property
    def create_stage_sql(self) -> str:
        columns = ", ".join(f"{field} {kind}" for field, kind in self.staging)
        return f"CREATE TEMP TABLE IF NOT EXISTS {self.stage} ({columns}) ON COMMIT DELETE ROWS"

    @cached_property
    def copy_sql(self) -> str:
        return f"COPY {self.stage} ({', '.join(field for field, _ in self.staging)}) FROM STDIN (FORMAT BINARY)"

    @cached_property
    def insert_sql(self) -> str:
        columns = ", ".join(column for column, _ in self.target)
        expressions = ", ".join(expression for _, expression in self.target)
        return (
            f"INSERT INTO public.{self.name} ({columns}) SELECT {expressions} FROM {self.stage}"
            f" ON CONFLICT ({', '.join(self.conflict)}) DO NOTHING"
        )


EQUITY_DATA = TableSpec(
    name="equity_data",
    target=(
        ("ticker", "symbol"),
        ("timestamp", _MS.format("trade_time_ms")),
        ("price", "price::numeric(18, 6)"),
        ("volume", "size"),
        ("day_volume", "day_volume"),
        ("last_size", "last_size"),
        ("bid", "bid::numeric(18, 6)"),
        ("ask", "ask::numeric(18, 6)"),
        ("received_at", _NS.format("received_ns")),
    ),
    conflict=("ticker", "timestamp", "day_volume"),
)

INDICATORS = TableSpec(
    name="indicators",
    target=(
        ("ticker", "symbol"),
        ("timestamp", _MS.format("trade_time_ms")),
        ("day_volume", "day_volume"),
        ("price", "price::numeric(18, 6)"),
        ("sma9", "sma9::numeric(18, 6)"),
        ("vwap", "vwap::numeric(18, 6)"),
        ("received_at", _NS.format("received_ns")),
    ),
    conflict=("ticker", "timestamp", "day_volume"),
)

OPTION_PRICES = TableSpec(
    name="option_prices",
    target=(
        ("ticker", "ticker"),
        ("option_symbol", "option_symbol"),
        ("timestamp", _MS.format("quote_time_ms")),
        ("option_type", "CASE option_type WHEN 'C' THEN 'CALL' WHEN 'P' THEN 'PUT' END"),
        ("strike_price", "strike_price::numeric(18, 6)"),
        ("expiration_date", "expiration_date::date"),
        ("last_price", "last_price::numeric(18, 6)"),
        ("bid", "bid::numeric(18, 6)"),
        ("ask", "ask::numeric(18, 6)"),
        ("mark", "mark::numeric(18, 6)"),
        ("volume", "volume"),
        ("open_interest", "open_interest"),
        ("delta", _greek("delta")),
        ("gamma", _greek("gamma")),
        ("theta", _greek("theta")),
        ("vega", _greek("vega")),
        ("rho", _greek("rho")),
        ("implied_volatility", _greek("implied_volatility")),
        ("underlying_price", "underlying_price::numeric(18, 6)"),
        ("greeks_source", "greeks_source"),
        ("received_at", _NS.format("received_ns")),
    ),
    conflict=("ticker", "timestamp", "option_type", "strike_price", "expiration_date"),
)

STREAMING_METRICS = TableSpec(
    name="streaming_metrics",
    target=(
        ("timestamp", _NS.format("ts_ns")),
        ("actor", "actor"),
        ("ticker", "ticker"),
        ("records_processed", "records_processed"),
        ("batch_size", "batch_size"),
        ("processing_time_ms", "processing_time_ms"),
        ("error_count", "error_count"),
        ("gap_count", "gap_count"),
        ("service_status", "service_status"),
        ("replayed_count", "replayed_count"),
        ("journal_bytes", "journal_bytes"),
        ("journal_error_count", "journal_error_count"),
        ("reconnect_count", "reconnect_count"),
        ("reconnect_causes", "reconnect_causes"),
        ("source", "source"),
        ("rejected_count", "rejected_count"),
        ("rejected_reasons", "rejected_reasons"),
        ("deployment", "deployment"),
    ),
    conflict=("deployment", "actor", "timestamp"),
)

STREAM_METRICS = TableSpec(
    name="stream_metrics",
    target=(
        ("timestamp", _NS.format("ts_ns")),
        ("stream", "stream"),
        ("epoch", "epoch"),
        ("published_seq", "published_seq"),
        ("committed_seq", "committed_seq"),
        ("lag_records", "lag_records"),
        ("lag_seconds", "lag_seconds"),
    ),
    conflict=("stream", "timestamp"),
)

TABLES = {spec.name: spec for spec in (EQUITY_DATA, INDICATORS, OPTION_PRICES, STREAMING_METRICS, STREAM_METRICS)}


def connect(
    url: str, application_name: str = "streaming-writer", statement_timeout_ms: int = 30_000
) -> psycopg.Connection:
    """A connection for `write_batches`, with its staging tables created.

    The timeout is set with SET, not a startup option, which poolers may refuse.
    """
    conn = psycopg.connect(url, autocommit=False, application_name=application_name, connect_timeout=10)
    with conn.transaction():
        conn.execute(f"SET statement_timeout = {int(statement_timeout_ms)}")
        for spec in TABLES.values():
            conn.execute(spec.create_stage_sql)
    return conn


_ADVANCE_OFFSETS = """
    INSERT INTO public.stream_offsets (consumer, stream, epoch, seq)
    SELECT %(consumer)s, o.stream, o.epoch, o.seq
    FROM unnest(%(streams)s::text[], %(epochs)s::int8[], %(seqs)s::int8[]) AS o(stream, epoch, seq)
    ON CONFLICT (consumer, stream) DO UPDATE
        SET epoch = excluded.epoch, seq = excluded.seq, committed_at = clock_timestamp()
        WHERE (stream_offsets.epoch, stream_offsets.seq) < (excluded.epoch, excluded.seq)
"""


@functools.cache
def store_sql(tables: tuple[str, ...], with_offsets: bool) -> str:
    """One statement that moves every staged table's rows into its table (and advances the offsets),
    returning the rows inserted per table, in `tables` order. Data-modifying CTEs all run to completion,
    read or not: one round trip instead of one per table."""
    steps = [f"t{i} AS ({TABLES[table].insert_sql} RETURNING 1)" for i, table in enumerate(tables)]
    if with_offsets:
        steps.append(f"advanced AS ({_ADVANCE_OFFSETS.strip()})")
    counts = ", ".join(f"(SELECT count(*) FROM t{i})" for i in range(len(tables))) or "NULL"
    return f"WITH {', '.join(steps)} SELECT {counts}"


def load_offsets(conn: psycopg.Connection, consumer: str) -> dict[str, tuple[int, int]]:
    """The last (epoch, seq) `consumer` committed, per stream."""
    with conn.transaction():
        rows = conn.execute(
            "SELECT stream, epoch, seq FROM public.stream_offsets WHERE consumer = %s", (consumer,)
        ).fetchall()
    return {stream: (epoch, seq) for stream, epoch, seq in rows}


def write_batches(
    conn: psycopg.Connection,
    batches: dict[str, list[tuple]],
    consumer: str = "",
    offsets: dict[str, tuple[int, int]] | None = None,
) -> dict[str, int]:
    """Store every table's rows, and `consumer`'s new offsets, in one transaction.

    Returns rows inserted per table; rows whose key is already stored are
    skipped (len(rows) - inserted of them). Because the offsets commit with
    the rows, a crash leaves either both or neither.
    """
    tables = tuple(table for table, rows in batches.items() if rows)
    inserted = dict.fromkeys(batches, 0)
    if not tables and not offsets:
        return inserted
    with conn.transaction(), conn.cursor() as cursor:
        for table in tables:
            spec = TABLES[table]
            with cursor.copy(spec.copy_sql) as copy:
                copy.set_types(spec.types)
                for row in batches[table]:
                    copy.write_row(row)
        streams = list(offsets or ())
        counts = cursor.execute(store_sql(tables, bool(offsets)), {
            "consumer": consumer, "streams": streams,
            "epochs": [offsets[name][0] for name in streams], "seqs": [offsets[name][1] for name in streams],
        }).fetchone()
    inserted.update(zip(tables, counts))
    return inserted
