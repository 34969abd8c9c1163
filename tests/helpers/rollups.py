"""Minute bars of a trading day, and what their rollups (sql/024) must be, by pandas' resample.

The reference is computed apart from the SQL: pandas decides the buckets (`resample` in New York time, origin at
midnight, the hour offset to :30; the daily from the regular session only), Python's Decimal the values, exactly,
then rounded to the columns' scale as Postgres rounds (half away from zero).
"""

from __future__ import annotations

import datetime
import random
from decimal import ROUND_HALF_UP, Decimal, localcontext

import msgspec
import pandas as pd
import psycopg

from common.feed.market_hours import NEW_YORK
from common.transport.messages import MinuteBar

PRICE = Decimal("0.000001")  # numeric(18, 6)
VOLUME = Decimal("0.0001")  # numeric(20, 4)
#: interval -> how pandas resamples a New York-time index into its buckets.
RULES = {
    "5m": dict(rule="5min", origin="start_day"),
    "15m": dict(rule="15min", origin="start_day"),
    "1h": dict(rule="1h", origin="start_day", offset="30min"),
}
Key = tuple[str, str, datetime.datetime]  # ticker, interval, bucket start (UTC)
Values = tuple[Decimal, Decimal, Decimal, Decimal, Decimal, Decimal | None, int]


def ms(day: datetime.date, hour: int, minute: int) -> int:
    """The instant of `hour:minute` New York time on `day`, in ms."""
    return int(datetime.datetime.combine(day, datetime.time(hour, minute), NEW_YORK).timestamp() * 1000)


def bar(ticker: str, start_ms: int, open_: float, high: float, low: float, close: float, volume: float,
        sequence: int = 1, source: str = "stream") -> MinuteBar:
    return MinuteBar(ticker, start_ms, open_, high, low, close, volume, sequence if source == "stream" else -1,
                     start_ms * 1_000_000 + 60_000_000_000, source)


def session_bars(ticker: str, day: datetime.date, seed: int, first: tuple[int, int] = (7, 58),
                 last: tuple[int, int] = (17, 3)) -> list[MinuteBar]:
    """A day of minute bars from `first` to `last` (New York): pre-market, the regular session, post-market.
    Prices are sub-penny (4 places), volumes sometimes fractional; one minute in 25 traded nothing (volume 0),
    one in 40 is missing (no trades, no bar), as Schwab's stream has them."""
    rng = random.Random(seed)
    price = 400 + rng.random() * 100
    bars = []
    t = datetime.datetime.combine(day, datetime.time(*first), NEW_YORK)
    end = datetime.datetime.combine(day, datetime.time(*last), NEW_YORK)
    n = 0
    while t <= end:
        n += 1
        if rng.random() >= 1 / 40:
            open_ = round(price, 4)
            close = round(price * (1 + rng.gauss(0, 0.001)), 4)
            high = round(max(open_, close) + rng.random() * 0.3, 4)
            low = round(min(open_, close) - rng.random() * 0.3, 4)
            volume = 0.0 if rng.random() < 1 / 25 else rng.randint(1, 50_000) + rng.choice((0, 0, 0.5, 0.25))
            bars.append(bar(ticker, int(t.timestamp() * 1000), open_, high, low, close, volume, n))
            price = close
        t += datetime.timedelta(minutes=1)
    return bars


def rows(bars: list[MinuteBar]) -> list[tuple]:
    """What `db.write_batches` takes for equity_bars."""
    return [msgspec.structs.astuple(b) for b in bars]


def latest(*batches: list[MinuteBar]) -> list[MinuteBar]:
    """The minute bars stored after writing the batches in order, as the writer stores them: a later bar of a
    (ticker, minute) replaces an earlier one (all test bars are the stream's or fill missing minutes)."""
    stored: dict[tuple[str, int], MinuteBar] = {}
    for batch in batches:
        for b in batch:
            stored[(b.symbol, b.start_ms)] = b
    return list(stored.values())


def _frame(bars: list[MinuteBar]) -> pd.DataFrame:
    """One row per minute, indexed by its New York start; the values as the columns hold them (Decimal)."""
    def dec(value: float, scale: Decimal) -> Decimal:
        return Decimal(repr(value)).quantize(scale, ROUND_HALF_UP)

    index = pd.DatetimeIndex([pd.Timestamp(b.start_ms, unit="ms", tz="UTC") for b in bars]).tz_convert(
        "America/New_York")
    frame = pd.DataFrame({
        "ticker": [b.symbol for b in bars],
        "open": [dec(b.open, PRICE) for b in bars],
        "high": [dec(b.high, PRICE) for b in bars],
        "low": [dec(b.low, PRICE) for b in bars],
        "close": [dec(b.close, PRICE) for b in bars],
        "volume": [dec(b.volume, VOLUME) for b in bars],
    }, index=index, dtype=object)
    return frame.sort_index()


def _values(group: pd.DataFrame) -> Values:
    """One bucket's rollup: first open, max high, min low, last close, volume, vwap of the typical price
    ((high + low + close) / 3, weighted by volume; None when no volume), minutes."""
    with localcontext() as exact:
        exact.prec = 100
        volume = sum(group["volume"], Decimal(0))
        weighted = sum(((h + lo + c) * v for h, lo, c, v in zip(group["high"], group["low"], group["close"],
                                                              group["volume"])), Decimal(0))
        vwap = (weighted / (3 * volume)).quantize(PRICE, ROUND_HALF_UP) if volume > 0 else None
    return (group["open"].iloc[0], max(group["high"]), min(group["low"]), group["close"].iloc[-1], volume, vwap,
            len(group))


def _utc(label: pd.Timestamp) -> datetime.datetime:
    return label.tz_convert("UTC").to_pydatetime()


def expected_rollups(bars: list[MinuteBar]) -> dict[Key, Values]:
    """Every (ticker, interval, bucket) the minute bars make, and its values, by pandas' resample."""
    frame = _frame(bars)
    expected: dict[Key, Values] = {}
    for ticker, minutes in frame.groupby("ticker"):
        for interval, rule in RULES.items():
            for label, group in minutes.resample(**rule):
                if len(group):
                    expected[(ticker, interval, _utc(label))] = _values(group)
        regular = minutes.between_time("09:30", "16:00", inclusive="left")
        for label, group in regular.resample("1D"):
            if len(group):
                expected[(ticker, "1d", _utc(label + pd.Timedelta(hours=9, minutes=30)))] = _values(group)
    return expected


def stored_rollups(conn: psycopg.Connection) -> dict[Key, Values]:
    """The rollups table, keyed like `expected_rollups` (the connection must be allowed to read it)."""
    found = conn.execute('SELECT ticker, "interval", timestamp, open, high, low, close, volume, vwap, bar_count'
                         " FROM public.equity_bar_rollups").fetchall()
    return {(ticker, interval, at.astimezone(datetime.timezone.utc)): tuple(values)
            for ticker, interval, at, *values in found}


def differences(stored: dict[Key, Values], expected: dict[Key, Values]) -> list[str]:
    """What differs, readably (empty when equal)."""
    lines = [f"missing {key}: {expected[key]}" for key in sorted(expected.keys() - stored.keys())]
    lines += [f"extra {key}: {stored[key]}" for key in sorted(stored.keys() - expected.keys())]
    lines += [f"{key}: stored {stored[key]} expected {expected[key]}"
              for key in sorted(stored.keys() & expected.keys()) if stored[key] != expected[key]]
    return lines
