"""The writer's database access: per batch, one COPY and one statement that stores every table and the offsets.

Rows arrive as `msgspec.structs.astuple(row)`, the fields in order of the
struct `common/streams.py` stores in the table (`row_columns`). A batch is
COPYed into one TEMP staging table, `stage_rows`, as one line per table: the
table's number and its rows as one JSON array of arrays (msgspec encodes it
in C, with no Python object per value). One statement then takes the staged
lines out and moves each table's rows with `INSERT ... SELECT ... ON
CONFLICT DO NOTHING` (a table of revisions, the bars, replaces instead: the
last row of a key in the batch wins), and advances the consumer's offsets
(data-modifying CTEs): one transaction, so a crash leaves either all of it or none, and a
row already stored (a replay after a restart) or repeated within the batch
is skipped without costing the rest of the batch. The SELECT converts in SQL:
epoch times to timestamptz, and float8 to numeric, which keeps the decimal a
float prints as (417.09 stays 417.090000). A float that is NaN or infinite
travels as JSON null (NULL in the table, or refused by its CHECK).

Why this shape: each COPY costs round trips, and each transaction two more.
Measured by `python -m tests.copy_bench` on a local Postgres (client CPU and
wall per batch of 11 trades, 11 indicator values and 5 option rows, four
runs), a binary COPY of each table into its own staging table and the same
INSERTs in one transaction cost 770-1,090 µs and 3.0-4.2 ms; this path
310-415 µs and 1.8-2.2 ms. A direct COPY into the tables (trades only) cost
380-535 µs against this path's 250-560: it has to make every timestamp and
decimal in Python, and one duplicate aborts its whole batch.

The tables are partitioned by New York day (sql/022). A batch with a row
for a day that has no partition yet (a replay of an old journal, a backfill
of last year) is refused whole by PostgreSQL; the days its rows need are
then read from the same staged lines, their partitions made, and the batch
written again. That costs nothing on the usual path: the writer keeps a
week's partitions ahead (`create_partitions`).

The staging table is session-local and the statement is prepared after a few
runs, so this needs a direct connection or Supabase's session pooler, not the
transaction pooler.
"""

from __future__ import annotations

import datetime
import functools
import typing
from dataclasses import dataclass
from functools import cached_property

import msgspec
import psycopg

from common.store.connection import open_connection
from common.streams import ROW_OF

_MS = "to_timestamp({} / 1000.0)"
_NS = "to_timestamp({} / 1000000000.0)"


def _greek(column: str) -> str:
    """NULL for NaN, infinity or a size numeric(18,8) cannot hold: one greek blown up
    near expiry must not abort its whole batch."""
    return f"CASE WHEN abs({column}) < 1e9 THEN {column}::numeric(18, 8) END"


#: Postgres types of the struct field types a stored record has.
_PG_TYPES = {str: "text", int: "int8", float: "float8"}


def row_columns(record: type[msgspec.Struct]) -> tuple[tuple[str, str], ...]:
    """(field, Postgres type) of every field of `record`, in order: a stored struct's fields, said once."""
    columns = []
    for field in msgspec.structs.fields(record):
        kinds = set(typing.get_args(field.type) or (field.type,)) - {type(None)}
        if len(kinds) != 1 or next(iter(kinds)) not in _PG_TYPES:
            raise TypeError(f"{record.__name__}.{field.name}: {field.type} has no column type")
        columns.append((field.name, _PG_TYPES[next(iter(kinds))]))
    return tuple(columns)


@dataclass(frozen=True)
class TableSpec:
    """How rows of one struct reach one table.

    `target` is (table column, SQL expression over the row's fields); the
    fields are the struct's own (`row_columns`), the struct the one
    `common/streams.py` stores in the table.
    """

    name: str
    target: tuple[tuple[str, str], ...]
    #: The table's unique key, which a replayed row would repeat; empty for a table with none (the quotes),
    #: whose rows only the offsets committed with them keep from being stored twice.
    conflict: tuple[str, ...]
    #: Columns a row with a stored key replaces, where a later row revises an earlier one (a bar Schwab sent
    #: again with new values); the same values again change nothing. Empty: a stored key is a duplicate, skipped.
    revised: tuple[str, ...] = ()
    #: Columns replaced along with a revision, but not compared (when the row was received, say).
    refreshed: tuple[str, ...] = ()
    #: Which stored rows a revision may replace (SQL over the table's row and `excluded`).
    revise_when: str = "true"

    @cached_property
    def fields(self) -> tuple[tuple[str, str], ...]:
        return row_columns(ROW_OF[self.name])

    def _rows(self, staged: str, number: int) -> str:
        """The rows staged as JSON arrays under `number` in CTE `staged`, as a relation of the struct's fields."""
        fields = ", ".join(f"(r.value->>{i})::{kind} AS {field}" for i, (field, kind) in enumerate(self.fields))
        return (f"(SELECT {fields}, r.n FROM {staged}, jsonb_array_elements({staged}.rows) WITH ORDINALITY"
                f" AS r(value, n) WHERE {staged}.t = {number}) AS row")

    def days_sql(self, staged: str, number: int) -> str:
        """The New York days (the partitions, sql/022) the rows staged under `number` fall on, with the table."""
        return (f"SELECT DISTINCT '{self.name}' AS name, ({dict(self.target)['timestamp']}"
                f" AT TIME ZONE 'America/New_York')::date AS day FROM {self._rows(staged, number)}")

    def insert_sql(self, staged: str, number: int) -> str:
        """INSERT of the rows staged as JSON arrays under `number` in CTE `staged`: duplicates skipped, or, for a
        table of revisions, the last row of each key in the batch replacing what is stored."""
        columns = ", ".join(column for column, _ in self.target)
        expressions = ", ".join(expression for _, expression in self.target)
        rows = self._rows(staged, number)
        if not self.conflict:
            return f"INSERT INTO public.{self.name} ({columns}) SELECT {expressions} FROM {rows}"
        if not self.revised:
            return (f"INSERT INTO public.{self.name} ({columns}) SELECT {expressions} FROM {rows}"
                    f" ON CONFLICT ({', '.join(self.conflict)}) DO NOTHING")
        key = ", ".join(dict(self.target)[column] for column in self.conflict)
        stored = ", ".join(f"{self.name}.{column}" for column in self.revised)
        incoming = ", ".join(f"excluded.{column}" for column in self.revised)
        replaced = (*self.revised, *self.refreshed)
        return (f"INSERT INTO public.{self.name} ({columns}) SELECT DISTINCT ON ({key}) {expressions} FROM {rows}"
                f" ORDER BY {key}, row.n DESC"
                f" ON CONFLICT ({', '.join(self.conflict)}) DO UPDATE SET ({', '.join(replaced)}, revised_at)"
                f" = ({', '.join(f'excluded.{column}' for column in replaced)}, clock_timestamp())"
                f" WHERE ({self.revise_when}) AND ({stored}) IS DISTINCT FROM ({incoming})")


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
        ("contract", "contract"),
    ),
    conflict=("ticker", "timestamp", "day_volume"),
)

INDEX_LEVELS = TableSpec(
    name="index_levels",
    target=(
        ("ticker", "symbol"),
        ("timestamp", _MS.format("time_ms")),
        ("level", "level::numeric(18, 6)"),
        ("received_at", _NS.format("received_ns")),
    ),
    conflict=("ticker", "timestamp"),
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
        ("indicative_bid", "indicative_bid::numeric(18, 6)"),
        ("indicative_ask", "indicative_ask::numeric(18, 6)"),
        ("indicative_at", _MS.format("indicative_time_ms")),
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
        ("bars_missing", "bars_missing"),
        ("bars_repaired", "bars_repaired"),
        ("entitlement", "entitlement"),
        ("delayed_services", "delayed_services"),
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

EQUITY_BARS = TableSpec(
    name="equity_bars",
    target=(
        ("ticker", "symbol"),
        ("timestamp", _MS.format("start_ms")),
        ("open", "open::numeric(18, 6)"),
        ("high", "high::numeric(18, 6)"),
        ("low", "low::numeric(18, 6)"),
        ("close", "close::numeric(18, 6)"),
        ("volume", "volume::numeric(20, 4)"),
        ("sequence", "nullif(chart_sequence, -1)"),
        ("source", "source"),
        ("received_at", _NS.format("received_ns")),
    ),
    conflict=("ticker", "timestamp"),
    revised=("open", "high", "low", "close", "volume", "source"),
    refreshed=("sequence", "received_at"),
    # A bar from price history never replaces one the stream delivered; the stream's replaces any.
    revise_when="excluded.source = 'stream' OR equity_bars.source <> 'stream'",
)

EQUITY_QUOTES = TableSpec(
    name="equity_quotes",
    target=(
        ("ticker", "symbol"),
        ("timestamp", _MS.format("quote_time_ms")),
        ("bid", "bid::numeric(18, 6)"),
        ("ask", "ask::numeric(18, 6)"),
        ("bid_size", "bid_size"),
        ("ask_size", "ask_size"),
        ("received_at", _NS.format("received_ns")),
    ),
    conflict=("ticker", "timestamp", "bid", "ask", "bid_size", "ask_size"),
)

_STAGE = "stage_rows"

TABLES = {spec.name: spec for spec in (EQUITY_DATA, INDEX_LEVELS, INDICATORS, OPTION_PRICES, EQUITY_BARS,
                                       EQUITY_QUOTES, STREAMING_METRICS, STREAM_METRICS)}


def connect(
    url: str, application_name: str = "streaming-writer", statement_timeout_ms: int = 30_000,
    simulated: bool = False,
) -> psycopg.Connection:
    """A connection for `write_batches`, with its staging table: autocommit, as the COPY and the statement
    that empties the staging table are one transaction each. `simulated`: the simulator stands in for Schwab,
    and every bar this session stores says so (`equity_bars.simulated`, sql/029)."""
    conn = open_connection(url, application_name, statement_timeout_ms=statement_timeout_ms)
    conn.execute(f"CREATE TEMP TABLE IF NOT EXISTS {_STAGE} (t int2 NOT NULL, rows jsonb NOT NULL)")
    if simulated:
        conn.execute("SET streaming.simulated = on")
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
    """One statement that empties the staging table into every table (`tables[i]` staged as `i`) and
    advances the offsets, returning the rows inserted per table. Data-modifying CTEs all run to
    completion, read or not."""
    steps = [f"staged AS (DELETE FROM {_STAGE} RETURNING t, rows)"] if tables else []
    steps += [f"t{i} AS ({TABLES[table].insert_sql('staged', i)} RETURNING 1)" for i, table in enumerate(tables)]
    if with_offsets:
        steps.append(f"advanced AS ({_ADVANCE_OFFSETS.strip()})")
    counts = ", ".join(f"(SELECT count(*) FROM t{i})" for i in range(len(tables))) or "NULL"
    return f"WITH {', '.join(steps)} SELECT {counts}"


@functools.cache
def partitions_sql(tables: tuple[str, ...]) -> str:
    """One statement that empties the staging table and makes the partitions its rows need; returns how many."""
    days = " UNION ".join(TABLES[table].days_sql("staged", i) for i, table in enumerate(tables))
    return (f"WITH staged AS (DELETE FROM {_STAGE} RETURNING t, rows)"
            f" SELECT coalesce(sum(public.create_partitions(d.day, d.day, d.name)), 0)::int FROM ({days}) AS d")


def create_partitions(conn: psycopg.Connection, first_day: datetime.date, last_day: datetime.date) -> int:
    """Every table's partitions for the New York days first_day..last_day that are missing; how many were made. A
    call per table: a call makes at most 64 (sql/031), and a writer back after days away may lack more of all."""
    return sum(conn.execute("SELECT public.create_partitions(%s, %s, %s)", (first_day, last_day, table)).fetchone()[0]
               for table in TABLES)


def _lacks_partition(error: psycopg.Error) -> bool:
    """PostgreSQL's refusal of a row for a day with no partition: a check violation that names one of our tables
    and no constraint (a CHECK names its own). Read off the error's fields, not its message, which the server's
    lc_messages may translate."""
    return (isinstance(error, psycopg.errors.CheckViolation) and error.diag.constraint_name is None
            and error.diag.schema_name == "public" and error.diag.table_name in TABLES)


def load_offsets(conn: psycopg.Connection, consumer: str) -> dict[str, tuple[int, int]]:
    """The last (epoch, seq) `consumer` committed, per stream."""
    rows = conn.execute("SELECT stream, epoch, seq FROM public.stream_offsets WHERE consumer = %s", (consumer,))
    return {stream: (epoch, seq) for stream, epoch, seq in rows.fetchall()}


_rows_json = msgspec.json.Encoder()


def staged_lines(tables: tuple[str, ...], batches: dict[str, list[tuple]]) -> bytes:
    """COPY text of `stage_rows`: per table its number, a tab, its rows as one JSON array. JSON escapes every
    control character, so only the backslash needs COPY's escaping."""
    return b"".join(b"%d\t%s\n" % (i, _rows_json.encode(batches[table]).replace(b"\\", b"\\\\"))
                    for i, table in enumerate(tables))


def write_batches(
    conn: psycopg.Connection,
    batches: dict[str, list[tuple]],
    consumer: str = "",
    offsets: dict[str, tuple[int, int]] | None = None,
) -> dict[str, int]:
    """Store every table's rows, and `consumer`'s new offsets, in one transaction.

    Returns rows inserted per table; rows whose key is already stored are
    skipped (len(rows) - inserted of them). Because the offsets commit with
    the rows, a crash leaves either both or neither. A batch refused for a
    day with no partition is written again once its days' partitions are
    made; any other failure goes up, with the staging table clean for the
    caller's retry (or a smaller batch).
    """
    tables = tuple(table for table, rows in batches.items() if rows)
    inserted = dict.fromkeys(batches, 0)
    if not tables and not offsets:
        return inserted
    streams = list(offsets or ())
    lines = staged_lines(tables, batches)
    parameters = {"consumer": consumer, "streams": streams,
                  "epochs": [offsets[name][0] for name in streams], "seqs": [offsets[name][1] for name in streams]}
    try:
        counts = _stage_and_run(conn, tables, lines, store_sql(tables, bool(offsets)), parameters)
    except psycopg.Error as error:
        if not _lacks_partition(error):
            raise
        _stage_and_run(conn, tables, lines, partitions_sql(tables), None)
        counts = _stage_and_run(conn, tables, lines, store_sql(tables, bool(offsets)), parameters)
    inserted.update(zip(tables, counts))
    return inserted


def _stage_and_run(conn: psycopg.Connection, tables: tuple[str, ...], lines: bytes, statement: str,
                   parameters: dict | None) -> tuple:
    """COPY `lines` into the staging table and run `statement`, which empties it. A statement that fails leaves
    its lines staged: they are cleared before the error goes up."""
    with conn.cursor() as cursor:
        if tables:
            with cursor.copy(f"COPY {_STAGE} (t, rows) FROM STDIN") as copy:
                copy.write(lines)
        try:
            return cursor.execute(statement, parameters).fetchone()
        except psycopg.Error:
            if tables and not conn.broken:
                conn.execute(f"TRUNCATE {_STAGE}")
            raise
