"""options: picks the option contracts to stream.

For each ticker it reads Schwab's option chain (REST, the CHAIN_STRIKES
strikes nearest the underlying, never unbounded), chooses the nearest expiry's
contracts within OPTION_STRIKE_BAND of the underlying (of an index's, the
root that settles at the close: SPXW, the 0DTE on a weekday), and tells
ingest (which owns the one streamer connection) which contracts it wants. It
repeats that wish every OPTION_REFRESH_INTERVAL, so a restarted ingest
converges. When the underlying price the option quotes carry moves more than
OPTION_RECENTER_THRESHOLD from where a band was chosen, that ticker's chain is
read again and the new wish sent at once: ingest UNSUBS only the contracts
that left the band and ADDs those that entered it. A replay
(STREAM_SOURCE=replay) reads no chain: there is no one to ask.

The LEVELONE_OPTIONS quotes ingest journals and publishes come here only for
the underlying's price; the writer stores them as `option_prices` rows
through `option_row` (`common/streams.py`), exactly once from ingest's
journal. So this actor forwards nothing and journals nothing: a quote it
misses costs at most a later re-centring, never a row.
"""

from __future__ import annotations

import datetime
import logging
import math
import time
from collections.abc import Callable, Sequence
from typing import Any

import httpx
from authlib.integrations.base_client.errors import OAuthError

from common import symbols
from common.actor import Actor, Work
from common.analytics.option_chain import (
    NEW_YORK,
    ChainError,
    band_changes,
    decode_chain,
    off_centre,
    select_contracts,
)
from common.config import Config
from common.feed.schwab_client import force_refresh, make_client
from common.feed.services.levelone_options import SERVICE as OPTIONS
from common.feed.streamer import Backoff
from common.observe.stats import ActorStats
from common.transport.delivery import Follower
from common.transport.messages import Envelope, OptionQuote, OptionSubscription

#: The strikes nearest the underlying that are read, never the whole chain (an index's is too big for Schwab to
#: send: `TooBigBody`): far more than OPTION_STRIKE_BAND's 2 % spans on any underlying (SPX at 5-point strikes: 48).
CHAIN_STRIKES = 100
#: A chain that could not be read is tried again after 1 s, doubling up to CHAIN_RETRY (or the next refresh, if
#: sooner): a simulator or a Schwab API still starting costs a second of options, not half a minute.
CHAIN_RETRY_FIRST, CHAIN_RETRY = 1.0, 30.0


def new_york_today() -> datetime.date:
    return datetime.datetime.now(NEW_YORK).date()


class ContractPicker(Work):
    """Per ticker: the band of contracts wished for, the spot it was chosen around, and when to read again.

    `connect` makes the Schwab client (the real schwab-py one; a test may hand
    in its own): once at the start, and again after Schwab refuses the token.
    `send` publishes a frame of records on the bus. `today` is New York's date,
    the day whose expiries are chosen.
    """

    subscriptions = (("ingest", OptionQuote),)
    #: A missed quote costs at most a later re-centring, never a row: the writer stores ingest's own.
    reports_loss = False

    def __init__(self, config: Config, connect: Callable[[], Any] | None, stats: ActorStats,
                 log: logging.Logger, send: Callable[[Sequence[OptionSubscription]], int],
                 today: Callable[[], datetime.date] = new_york_today):
        self.config, self.connect, self.stats, self.log, self.send, self.today = \
            config, connect, stats, log, send, today
        self.client = None if connect is None else connect()
        self.wishes: dict[str, OptionSubscription] = {}
        #: Per ticker: the spot its band was chosen around, and the newest spot quoted since.
        self.centres: dict[str, float] = {}
        self.spots: dict[str, float] = {}
        #: The tickers whose options are streamed: stocks' and indexes' (a future's are another service).
        optionable = [ticker for ticker in config.tickers if symbols.kind_of(ticker) in OPTIONS.instruments]
        #: When each ticker's chain is read next (none without a client: a replay has no one to ask).
        self.chain_due = {} if connect is None else dict.fromkeys(optionable, 0.0)
        self.retries = {ticker: Backoff(CHAIN_RETRY_FIRST, min(CHAIN_RETRY, config.option_chain_refresh))
                        for ticker in optionable}
        self.next_wish = 0.0

    def start(self, follower: Follower | None) -> bool:
        # Earlier versions followed ingest's option journal: their positions would keep it from being pruned.
        self.config.offsets_file("options").unlink(missing_ok=True)
        return True

    def take(self, frame: Envelope) -> None:
        """The newest underlying price each ticker's option quotes carry: what re-centring measures."""
        self.spots.update((quote.underlying, quote.underlying_price) for quote in frame.records
                          if isinstance(quote, OptionQuote) and quote.underlying_price)
        self.stats.records_in += len(frame.records)

    def duty(self, now: float) -> None:
        self.read_due_chains(now)
        self.recentre_moved(now)
        if now >= self.next_wish:
            if self.wishes:
                self.publish(list(self.wishes.values()))
            self.next_wish = now + self.config.option_refresh_interval

    def due(self) -> float:
        return min(self.next_wish, *self.chain_due.values(), math.inf)

    def publish(self, wishes: list[OptionSubscription]) -> None:
        """Tell ingest; repeated every OPTION_REFRESH_INTERVAL, so a restarted ingest converges."""
        self.send(wishes)
        self.stats.records_out += len(wishes)

    def choose_contracts(self, ticker: str, now: float) -> OptionSubscription | None:
        """Read `ticker`'s chain and wish for its band; when it cannot be read, keep the old wish and retry soon."""
        today = self.today()
        try:
            response = self.client.get_option_chain(ticker, strike_count=CHAIN_STRIKES, from_date=today,
                                                    to_date=today + datetime.timedelta(days=10))
            response.raise_for_status()
            centre, contracts = select_contracts(decode_chain(response.content), self.config.option_strike_band,
                                                 today)
        except (ChainError, ValueError, httpx.HTTPError, OAuthError) as error:
            self.stats.errors += 1
            self.log.error("no option contracts chosen", extra={"ticker": ticker,
                                                                "reason": str(error) or repr(error)})
            if isinstance(error, OAuthError) or (isinstance(error, httpx.HTTPStatusError)
                                                 and error.response.status_code == 401):
                # A refused token: retry with whatever the token file holds by then (`make login`, or
                # ingest's refresh), refreshed first, rather than crash into supervisord's restarts.
                self.client = self.connect()
                force_refresh(self.client)
            self.centres.pop(ticker, None)  # the retry, not every quote until then, reads the chain again
            self.chain_due[ticker] = now + self.retries[ticker].next()
            return None
        self.retries[ticker].reset()
        self.centres[ticker] = centre
        self.spots.pop(ticker, None)  # a move is measured only by quotes newer than the band
        self.chain_due[ticker] = now + self.config.option_chain_refresh
        self.wishes[ticker] = OptionSubscription(ticker, contracts, time.time_ns())
        return self.wishes[ticker]

    def read_due_chains(self, now: float) -> None:
        for ticker in [ticker for ticker, due in self.chain_due.items() if now >= due]:
            if wish := self.choose_contracts(ticker, now):
                self.log.info("option contracts chosen", extra={
                    "ticker": ticker, "spot": self.centres[ticker], "contracts": len(wish.contracts)})

    def recentre_moved(self, now: float) -> None:
        """A band the underlying has moved away from is chosen again and sent at once, not at the next repeat."""
        for ticker in off_centre(self.centres, self.spots, self.config.option_recenter_threshold):
            old_centre, before = self.centres[ticker], self.wishes[ticker].contracts
            if wish := self.choose_contracts(ticker, now):
                added, removed = band_changes(before, wish.contracts)
                self.log.info("option band re-centred", extra={
                    "ticker": ticker, "old_centre": old_centre, "new_centre": self.centres[ticker],
                    "added": len(added), "removed": len(removed)})
                self.publish([wish])


def main() -> None:
    actor = Actor("options")
    config = actor.config
    connect = None if config.replays else lambda: make_client(config, asyncio=False)
    actor.run(ContractPicker(config, connect, actor.stats, actor.log, actor.publisher.send))


if __name__ == "__main__":
    main()
