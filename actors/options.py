"""options: picks the option contracts to stream.

For each ticker it reads Schwab's option chain (REST), chooses the nearest
expiry's contracts within OPTION_STRIKE_BAND of the underlying, and tells
ingest (which owns the one streamer connection) which contracts it wants. It
repeats that wish every OPTION_REFRESH_INTERVAL, so a restarted ingest
converges. When the underlying price the option quotes carry moves more than
OPTION_RECENTER_THRESHOLD from where a band was chosen, that ticker's chain is
read again and the new wish sent at once: ingest UNSUBS only the contracts
that left the band and ADDs those that entered it. A replay
(STREAM_SOURCE=replay) reads no chain: there is no one to ask.

The LEVELONE_OPTIONS quotes ingest journals and publishes come here only for
the underlying's price; the writer stores them as `option_prices` rows
through `option_row` (`common/transport/streams.py`), exactly once from ingest's
journal. So this actor forwards nothing and journals nothing: a quote it
misses costs at most a later re-centring, never a row.
"""

from __future__ import annotations

import datetime
import time

import httpx
from authlib.integrations.base_client.errors import OAuthError

from common.actor import Actor
from common.analytics.option_chain import (
    NEW_YORK,
    ChainError,
    band_changes,
    decode_chain,
    off_centre,
    select_contracts,
)
from common.feed.schwab_client import force_refresh, make_client
from common.feed.streamer import Backoff
from common.transport.messages import Envelope, OptionQuote, OptionSubscription

#: A chain that could not be read is tried again after 1 s, doubling up to CHAIN_RETRY (or the next refresh, if
#: sooner): a simulator or a Schwab API still starting costs a second of options, not half a minute.
CHAIN_RETRY_FIRST, CHAIN_RETRY = 1.0, 30.0


def main() -> None:
    actor = Actor("options")
    config, stats, publisher = actor.config, actor.stats, actor.publisher
    # Earlier versions followed ingest's option journal: their positions would keep it from being pruned.
    config.offsets_file("options").unlink(missing_ok=True)
    subscriber = actor.subscriber()
    subscriber.subscribe("ingest", "option")
    client = None if config.replays else make_client(config, asyncio=False)
    wishes: dict[str, OptionSubscription] = {}
    # Per ticker: the spot its band was chosen around, and the newest spot quoted since.
    centres: dict[str, float] = {}
    spots: dict[str, float] = {}
    chain_due = {} if config.replays else dict.fromkeys(config.tickers, 0.0)
    retries = {ticker: Backoff(CHAIN_RETRY_FIRST, min(CHAIN_RETRY, config.option_chain_refresh))
               for ticker in config.tickers}
    next_wish = 0.0

    def choose_contracts(ticker: str, now: float) -> OptionSubscription | None:
        """Read `ticker`'s chain and wish for its band; when it cannot be read, keep the old wish and retry soon."""
        nonlocal client
        today = datetime.datetime.now(NEW_YORK).date()
        try:
            response = client.get_option_chain(ticker, from_date=today, to_date=today + datetime.timedelta(days=10))
            response.raise_for_status()
            centre, contracts = select_contracts(decode_chain(response.content), config.option_strike_band, today)
        except (ChainError, ValueError, httpx.HTTPError, OAuthError) as error:
            stats.errors += 1
            actor.log.error("no option contracts chosen", extra={"ticker": ticker, "reason": str(error) or repr(error)})
            if isinstance(error, OAuthError) or (isinstance(error, httpx.HTTPStatusError)
                                                 and error.response.status_code == 401):
                # A refused token: retry with whatever the token file holds by then (`make login`, or
                # ingest's refresh), refreshed first, rather than crash into supervisord's restarts.
                client = make_client(config, asyncio=False)
                force_refresh(client)
            centres.pop(ticker, None)  # the retry, not every quote until then, reads the chain again
            chain_due[ticker] = now + retries[ticker].next()
            return None
        retries[ticker].reset()
        centres[ticker] = centre
        spots.pop(ticker, None)  # a move is measured only by quotes newer than the band
        chain_due[ticker] = now + config.option_chain_refresh
        wishes[ticker] = OptionSubscription(ticker, contracts, time.time_ns())
        return wishes[ticker]

    def read_due_chains(now: float) -> None:
        for ticker in [ticker for ticker, due in chain_due.items() if now >= due]:
            if wish := choose_contracts(ticker, now):
                actor.log.info("option contracts chosen",
                               extra={"ticker": ticker, "spot": centres[ticker], "contracts": len(wish.contracts)})

    def recentre_moved(now: float) -> None:
        """A band the underlying has moved away from is chosen again and sent at once, not at the next repeat."""
        for ticker in off_centre(centres, spots, config.option_recenter_threshold):
            old_centre, before = centres[ticker], wishes[ticker].contracts
            if wish := choose_contracts(ticker, now):
                added, removed = band_changes(before, wish.contracts)
                actor.log.info("option band re-centred",
                               extra={"ticker": ticker, "old_centre": old_centre, "new_centre": centres[ticker],
                                      "added": len(added), "removed": len(removed)})
                publisher.send("option_subscription", [wish])
                stats.records_out += 1

    def watch_spots(frame: Envelope) -> None:
        """The newest underlying price each ticker's option quotes carry: what re-centring measures."""
        spots.update((quote.underlying, quote.underlying_price) for quote in frame.records
                     if isinstance(quote, OptionQuote) and quote.underlying_price)
        stats.records_in += len(frame.records)

    stats.status = "running"
    while not actor.shutdown.requested:
        now = time.monotonic()
        read_due_chains(now)
        recentre_moved(now)
        if now >= next_wish:
            if wishes:
                publisher.send("option_subscription", list(wishes.values()))
                stats.records_out += len(wishes)
            next_wish = now + config.option_refresh_interval
        frame = subscriber.recv(actor.wait(next_wish, *chain_due.values()))
        if isinstance(frame, Envelope):
            watch_spots(frame)
        actor.tick()

    actor.stopped()
    subscriber.close()


if __name__ == "__main__":
    main()
