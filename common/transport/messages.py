"""Every record that crosses the bus, defined once.

A frame on the bus is an `Envelope`: which stream it belongs to, that stream's
epoch (new each time its publisher starts) and a sequence number that grows by
one per frame within (stream, epoch). A subscriber that sees seq jump knows it
missed frames; that is the basis of exactly-once delivery (the ZeroMQ guide's
Clone pattern). One frame carries many records of one kind and one symbol:
batching per frame is how Python reaches high rates.

Times from Schwab are epoch milliseconds (Schwab's own resolution); times we
take ourselves are epoch nanoseconds.
"""

from __future__ import annotations

import msgspec


class EquityTrade(msgspec.Struct, tag="trade", array_like=True, frozen=True):
    """One LEVELONE_EQUITIES update in which TOTAL_VOLUME grew.

    `size` is the change in the day's cumulative volume since the previous
    update: Schwab throttles updates, so several trades can fold into one and
    LAST_SIZE would undercount. (`symbol`, `trade_time_ms`, `day_volume`) is
    unique: two trades in one millisecond differ in cumulative volume. A
    future's trade (`/ES`) says which `contract` it was in (`/ESZ26`: the
    active one of a continuous symbol); None for a stock's. Last and
    defaulted, so journals written before it read unchanged.
    """

    symbol: str
    trade_time_ms: int
    price: float
    size: int
    day_volume: int
    last_size: int
    bid: float | None
    ask: float | None
    received_ns: int
    contract: str | None = None


class IndexLevel(msgspec.Struct, tag="index_level", array_like=True, frozen=True):
    """An index's level (`$SPX`), each time a LEVELONE_EQUITIES update moved it.

    An index is computed, not traded: it has no volume and no book, so no
    trade is ever derived from it. `time_ms` is Schwab's trade time of the
    level (the frame's when it sent none).
    """

    symbol: str
    time_ms: int
    level: float
    received_ns: int


class EquityQuote(msgspec.Struct, tag="quote", array_like=True, frozen=True):
    """The top of book after a LEVELONE_EQUITIES update that moved it."""

    symbol: str
    quote_time_ms: int
    bid: float | None
    ask: float | None
    bid_size: int
    ask_size: int
    received_ns: int


class MinuteBar(msgspec.Struct, tag="bar", array_like=True, frozen=True):
    """A completed one-minute bar; `volume` is the bar's own volume.

    `source` is where it came from: `stream` (CHART_EQUITY, with Schwab's
    `chart_sequence`), or `repaired` / `backfill` (minute price history, which
    has no sequence: -1, stored as NULL). Last and defaulted, so journals
    written before it existed read unchanged.
    """

    symbol: str
    start_ms: int
    open: float
    high: float
    low: float
    close: float
    volume: float
    chart_sequence: int
    received_ns: int
    source: str = "stream"


class OptionQuote(msgspec.Struct, tag="option", array_like=True, frozen=True):
    """A complete LEVELONE_OPTIONS record: Schwab's quote, greeks and IV.

    `volatility` is Schwab's implied volatility in percent; greeks Schwab could
    not compute arrive as None. An index option (SPXW) may carry Schwab's
    indicative bid and ask and their time; None where Schwab sends none (every
    stock option). Last and defaulted, so journals written before read unchanged.
    """

    symbol: str
    underlying: str
    quote_time_ms: int
    contract_type: str
    strike: float
    expiration: str
    last: float | None
    bid: float | None
    ask: float | None
    mark: float | None
    total_volume: int
    open_interest: int
    volatility: float | None
    delta: float | None
    gamma: float | None
    theta: float | None
    vega: float | None
    rho: float | None
    underlying_price: float | None
    received_ns: int
    indicative_bid: float | None = None
    indicative_ask: float | None = None
    indicative_time_ms: int | None = None


class OptionRow(msgspec.Struct, tag="option_row", array_like=True, frozen=True):
    """A row of `option_prices`: an option quote completed by `option_chain.option_row`, which the writer stores.

    `implied_volatility` is a fraction (0.25 for 25 %). `greeks_source` says
    whether the greeks are Schwab's ("schwab") or computed here by
    Black-Scholes because Schwab sent none ("model").
    """

    ticker: str
    option_symbol: str
    quote_time_ms: int
    option_type: str
    strike_price: float
    expiration_date: str
    last_price: float | None
    bid: float | None
    ask: float | None
    mark: float | None
    volume: int
    open_interest: int
    delta: float | None
    gamma: float | None
    theta: float | None
    vega: float | None
    rho: float | None
    implied_volatility: float | None
    underlying_price: float | None
    greeks_source: str
    received_ns: int
    indicative_bid: float | None = None
    indicative_ask: float | None = None
    indicative_time_ms: int | None = None


class IndicatorValue(msgspec.Struct, tag="indicator", array_like=True, frozen=True):
    """SMA9 and session VWAP as of one trade, or as of an index's level.

    `sma9` is the mean of the last eight completed one-minute closes and the
    current price (the live bar's close); None until eight bars exist.
    `vwap` is volume-weighted from the regular session's open; None for an
    index, which has no volume (its `day_volume` is 0).
    """

    symbol: str
    trade_time_ms: int
    day_volume: int
    price: float
    sma9: float | None
    vwap: float | None
    received_ns: int


class StorageBudget(msgspec.Struct, array_like=True, frozen=True):
    """The storage budget as the writer last measured it: the database's size (pg_database_size), the budget
    (0: none), the bytes a day adds and the days left at that rate (-1: not measured yet), and the level."""

    database_bytes: int
    budget_bytes: int
    bytes_per_day: int
    days_left: float
    level: str


class MetricSample(msgspec.Struct, tag="metric", array_like=True, frozen=True):
    """One actor's counters since its start, sent periodically to metrics.

    Counters are cumulative so that a lost sample loses no count: the metrics
    actor differences consecutive samples. `epoch` and `last_seqs` are the
    sender's publisher position, from which metrics computes lag.
    `rss_bytes` is the process's resident memory when sampled (0 from a
    sender older than the field); `rejected` counts the items refused where
    data enters, by reason. `next_within_ns` is the sender's word on when its
    next sample comes (longer while nothing changes; 0: STATS_INTERVAL).
    `storage` is the writer's last judgement of the storage budget
    (`common/store/budget.py`), None from every other actor. `entitlement` is
    ingest's: the status Schwab's LOGIN reply gave the account (PN, NP, PP),
    and `delayed` the services whose latest item Schwab marked delayed
    ('LEVELONE_OPTIONS'; '' when none).
    """

    actor: str
    ts_ns: int
    status: str
    records_in: int
    records_out: int
    batches: int
    last_batch_size: int
    processing_ns: int
    errors: int
    gaps: int
    ticker: str | None = None
    journal_bytes: int = 0
    journal_errors: int = 0
    replayed: int = 0
    epoch: int = 0
    last_seqs: dict[str, int] = msgspec.field(default_factory=dict)
    reconnects: dict[str, int] = msgspec.field(default_factory=dict)
    rss_bytes: int = 0
    rejected: dict[str, int] = msgspec.field(default_factory=dict)
    bars_missing: int = 0
    bars_repaired: int = 0
    next_within_ns: int = 0
    storage: StorageBudget | None = None
    entitlement: str | None = None
    delayed: str = ""


class StreamingMetric(msgspec.Struct, tag="streaming_metric", array_like=True, frozen=True):
    """A row of `streaming_metrics`: one actor's activity over one interval.

    `source` says where the deployment's market data comes from, "schwab" or
    "simulator", so simulated rows are recognisable in the database.
    `rejected_count` / `rejected_reasons` are the interval's items refused
    where data enters ('price_not_finite=2,key_implausible=1'); `deployment`
    which deployment the row is from (several can share a database);
    `bars_missing` / `bars_repaired` the minute bars the stream missed while
    ingest was not streaming, and those filled from price history
    (`common/feed/bar_repair.py`); `entitlement` and `delayed_services` what
    ingest's sample said of Schwab's real-time entitlement (`MetricSample`).
    """

    ts_ns: int
    actor: str
    ticker: str | None
    records_processed: int
    batch_size: int
    processing_time_ms: int
    error_count: int
    gap_count: int
    service_status: str
    replayed_count: int = 0
    journal_bytes: int = 0
    journal_error_count: int = 0
    reconnect_count: int = 0
    reconnect_causes: str = ""
    source: str | None = None
    rejected_count: int = 0
    rejected_reasons: str = ""
    deployment: str | None = None
    bars_missing: int = 0
    bars_repaired: int = 0
    entitlement: str | None = None
    delayed_services: str = ""


class StreamLag(msgspec.Struct, tag="stream_lag", array_like=True, frozen=True):
    """A row of `stream_metrics`: how far the writer's commits trail one stream.

    `lag_records` is frames published but not committed; `lag_seconds` the
    age of the oldest of them (0 when caught up).
    """

    ts_ns: int
    stream: str
    epoch: int
    published_seq: int
    committed_seq: int
    lag_records: int
    lag_seconds: float


class OptionSubscription(msgspec.Struct, tag="option_subscription", array_like=True, frozen=True):
    """The full set of option contracts the options actor wants streamed.

    Sent as state, not as a delta, and repeated periodically, so that an
    ingest that starts late or misses one still converges on the right set.
    """

    underlying: str
    contracts: list[str]
    generated_ns: int


Record = (
    EquityTrade
    | IndexLevel
    | EquityQuote
    | MinuteBar
    | OptionQuote
    | OptionRow
    | IndicatorValue
    | MetricSample
    | StreamingMetric
    | StreamLag
    | OptionSubscription
)


#: Where a stream has got to: (epoch, seq) of its frames, compared as a tuple.
Position = tuple[int, int]


class Envelope(msgspec.Struct, array_like=True, frozen=True):
    """A bus frame: records of one kind and symbol, stamped for gap detection."""

    stream: str
    epoch: int
    seq: int
    sent_ns: int
    records: list[Record]


class Heartbeat(msgspec.Struct, array_like=True, frozen=True):
    """Sent by an idle publisher: the last seq of each of its streams.

    A subscriber compares these with what it has seen, so that a frame lost
    just before a quiet period is noticed at the next heartbeat, not at the
    next frame. `final` marks the last one a stopping publisher sends: a
    subscriber draining on shutdown knows it has everything from it.
    """

    publisher: str
    epoch: int
    sent_ns: int
    last_seqs: dict[str, int]
    final: bool = False


Frame = Envelope | Heartbeat

_encoder = msgspec.msgpack.Encoder()
_envelope_decoder = msgspec.msgpack.Decoder(Envelope)
_heartbeat_decoder = msgspec.msgpack.Decoder(Heartbeat)


def encode(frame: Envelope | Heartbeat) -> bytes:
    return _encoder.encode(frame)


def decode_envelope(payload: bytes) -> Envelope:
    return _envelope_decoder.decode(payload)


def decode_heartbeat(payload: bytes) -> Heartbeat:
    return _heartbeat_decoder.decode(payload)
