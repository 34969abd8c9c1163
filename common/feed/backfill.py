"""`make backfill TICKERS=… FROM=… TO=…`: minute bars from Schwab's price history, loaded into `equity_bars`.

For each ticker and each New York day from FROM to TO (both included, at
most MAX_DAYS: Schwab serves about 48 days of minute history) it asks for
that day's minute candles (`get_price_history_every_minute`, regular
session only unless `--extended`), checks them where they enter
(`common/feed/price_history.py`) and stores them as `source = 'backfill'`
with the writer's own statement: a bar already stored stays as it is (the
stream's always: a bar from history never replaces one the stream
delivered), so running it twice stores each bar once. One progress line per
ticker and day says how many candles came, how many were new, and how many
were refused and why. It writes straight into the database (no journal: it
is a one-off load, and idempotent), as DATABASE_URL's user.
"""

from __future__ import annotations

import argparse
import datetime
import sys
import time
from collections import Counter
from collections.abc import Iterator

import httpx
import msgspec
import psycopg

from common.config import ConfigError, Rejected, load, parse_tickers
from common.feed.market_hours import NEW_YORK
from common.feed.price_history import PriceHistoryError, decode_history, history_bars
from common.feed.schwab_client import TokenError, make_client
from common.store import db
from common.store.connection import reason
from common.symbols import is_future

MAX_DAYS = 48


def days(first: datetime.date, last: datetime.date) -> Iterator[datetime.date]:
    for offset in range((last - first).days + 1):
        yield first + datetime.timedelta(days=offset)


def day_window(day: datetime.date) -> tuple[datetime.datetime, datetime.datetime]:
    """New York's `day`, midnight to its last millisecond (DST days are 23 or 25 hours long)."""
    start = datetime.datetime.combine(day, datetime.time(), NEW_YORK)
    end = datetime.datetime.combine(day + datetime.timedelta(days=1), datetime.time(), NEW_YORK)
    return start, end - datetime.timedelta(milliseconds=1)


def epoch_ms(moment: datetime.datetime) -> int:
    return int(moment.timestamp() * 1000)


def parse_range(first: str, last: str, today: datetime.date) -> tuple[datetime.date, datetime.date]:
    """FROM and TO as dates, checked: a bad one raises ValueError naming it and what is accepted."""
    dates = []
    for name, raw in (("FROM", first), ("TO", last or today.isoformat())):
        try:
            dates.append(datetime.date.fromisoformat(raw.strip()))
        except ValueError:
            raise ValueError(f"{name}={raw!r} is not a date; accepted: YYYY-MM-DD") from None
    if dates[0] > dates[1]:
        raise ValueError(f"FROM={dates[0]} is after TO={dates[1]}")
    if dates[1] > today:
        raise ValueError(f"TO={dates[1]} is in the future (today is {today} in New York)")
    if (dates[1] - dates[0]).days + 1 > MAX_DAYS:
        raise ValueError(f"FROM..TO spans {(dates[1] - dates[0]).days + 1} days; Schwab serves about {MAX_DAYS}")
    return dates[0], dates[1]


def backfill_day(client, conn: psycopg.Connection, ticker: str, day: datetime.date, extended: bool) -> str:
    """Load one ticker's day; its progress line."""
    start, end = day_window(day)
    response = client.get_price_history_every_minute(ticker, start_datetime=start, end_datetime=end,
                                                     need_extended_hours_data=extended)
    response.raise_for_status()
    checked = history_bars(decode_history(response.content), ticker, epoch_ms(start), epoch_ms(end), "backfill",
                           time.time_ns())
    rows = [msgspec.structs.astuple(bar) for bar in checked.bars]
    stored = db.write_batches(conn, {"equity_bars": rows})["equity_bars"] if rows else 0
    line = f"{ticker} {day}: {len(checked.bars) + len(checked.rejected)} candles, {stored} new"
    if checked.rejected:
        reasons = Counter(why for _, why in checked.rejected)
        line += ", refused: " + ", ".join(f"{why}={count}" for why, count in sorted(reasons.items()))
    return line


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="streaming-backfill", description=__doc__.splitlines()[0])
    parser.add_argument("--tickers", default="", help="comma-separated (default: STREAM_TICKERS)")
    parser.add_argument("--from", dest="first", required=True, help="first New York day, YYYY-MM-DD")
    parser.add_argument("--to", dest="last", default="", help="last New York day, YYYY-MM-DD (default: today)")
    parser.add_argument("--extended", action="store_true", help="pre- and post-market minutes too")
    args = parser.parse_args(argv)
    try:
        config = load()
        tickers = parse_tickers(args.tickers) if args.tickers.strip() else config.tickers
        first, last = parse_range(args.first, args.last, datetime.datetime.now(NEW_YORK).date())
        if futures := [ticker for ticker in tickers if is_future(ticker)]:
            if args.tickers.strip():
                raise ValueError(f"{', '.join(futures)}: futures have no price history to backfill from (Schwab "
                                 "documents it for stocks and indexes only)")
            sys.stderr.write(f"backfill: {', '.join(futures)} left out: futures have no price history (Schwab "
                             "documents it for stocks and indexes only)\n")
            tickers = tuple(ticker for ticker in tickers if not is_future(ticker))
    except (ConfigError, Rejected, ValueError) as error:
        sys.stderr.write(f"backfill: {error}\n")
        return 2
    try:
        client = make_client(config, asyncio=False)
    except TokenError as error:
        sys.stderr.write(f"backfill: {error}\n")
        return 2
    try:
        conn = db.connect(config.database_url, application_name="streaming-backfill", simulated=config.uses_simulator)
    except psycopg.Error as error:
        sys.stderr.write(f"backfill: {reason(error, config.database_url, limit=None)}\n")
        return 2
    failed = 0
    with conn:
        for ticker in tickers:
            for day in days(first, last):
                try:
                    sys.stdout.write(backfill_day(client, conn, ticker, day, args.extended) + "\n")
                except (httpx.HTTPError, PriceHistoryError) as error:
                    failed += 1
                    sys.stdout.write(f"{ticker} {day}: not loaded: {str(error)[:300]}\n")
                sys.stdout.flush()
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
