"""options: picks the option contracts to stream and publishes option rows.

For each ticker it reads Schwab's option chain (REST), chooses the nearest
expiry's contracts within OPTION_STRIKE_BAND of the underlying, and tells
ingest (which owns the one streamer connection) which contracts it wants. It
repeats that wish every OPTION_REFRESH_INTERVAL, so a restarted ingest
converges. The LEVELONE_OPTIONS quotes ingest publishes come back here and
leave as `option_prices` rows.
"""

from __future__ import annotations

import datetime
import time

from common import config as configuration
from common import log
from common.bus import Gap, Publisher, Subscriber
from common.messages import Envelope, Heartbeat, OptionQuote, OptionSubscription
from common.option_chain import ChainError, NEW_YORK, option_row, select_contracts
from common.schwab_client import make_client
from common.shutdown import Shutdown
from common.stats import ActorStats

CONSUMER_WAIT = 30.0
#: A chain is re-read this often; between reads the wish is only repeated.
CHAIN_REFRESH = 900.0
#: On shutdown: wait for ingest's goodbye, at most this long (see Subscriber.drain).
DRAIN_QUIET = 2.0
DRAIN_LIMIT = 10.0


def main() -> None:
    config = configuration.load()
    config.ensure_dirs()
    logger = log.setup("options")
    shutdown = Shutdown()
    stats = ActorStats("options", config.stats_interval)
    publisher = Publisher(config, "options")
    missing = publisher.wait_for_subscribers(["writer"], CONSUMER_WAIT)
    if missing:
        logger.warning("publishing before these consumers subscribed", extra={"missing": missing})
    subscriber = Subscriber(config, "options")
    subscriber.subscribe("ingest", "option")
    client = make_client(config, asyncio=False)
    wishes: dict[str, OptionSubscription] = {}
    next_chain = next_wish = 0.0

    def lost(gap: Gap) -> None:
        stats.gaps += 1
        logger.warning("frames lost on the bus", extra={"stream": gap.stream, "epoch": gap.epoch, "first": gap.first, "last": gap.last})

    def forward(frame: Envelope | Heartbeat | None) -> None:
        """Option quotes from ingest leave as one frame of rows per underlying."""
        if not subscriber.admit(frame, lost):
            return
        started = time.perf_counter_ns()
        rows = [option_row(quote) for quote in frame.records if isinstance(quote, OptionQuote)]
        if rows:
            publisher.send("option_row", rows[0].ticker, rows)
        stats.records_in += len(frame.records)
        stats.records_out += len(rows)
        stats.batch(len(rows), started)

    stats.status = "running"

    while not shutdown.requested:
        now = time.monotonic()
        if now >= next_chain:
            today = datetime.datetime.now(NEW_YORK).date()
            for ticker in config.tickers:
                response = client.get_option_chain(ticker, from_date=today, to_date=today + datetime.timedelta(days=10))
                try:
                    response.raise_for_status()
                    spot, contracts = select_contracts(response.json(), config.option_strike_band, today)
                except (ChainError, ValueError) as error:
                    stats.errors += 1
                    logger.error("no option contracts chosen", extra={"ticker": ticker, "reason": str(error)})
                    continue
                wishes[ticker] = OptionSubscription(ticker, contracts, time.time_ns())
                logger.info("option contracts chosen", extra={"ticker": ticker, "spot": spot, "contracts": len(contracts)})
            next_chain = now + CHAIN_REFRESH
        if now >= next_wish:
            for ticker, wish in wishes.items():
                publisher.send("option_subscription", ticker, [wish])
            next_wish = now + config.option_refresh_interval

        forward(subscriber.recv(0.2))
        stats.maybe_publish(publisher)
        publisher.tick()

    subscriber.drain(forward, DRAIN_QUIET, DRAIN_LIMIT)
    logger.info("stopped", extra={"records_in": stats.records_in, "records_out": stats.records_out})
    publisher.close()
    subscriber.close()


if __name__ == "__main__":
    main()
