"""The one Schwab streamer connection, kept up for months: a loop of four states.

    waiting for a session ─► streaming ─► session over, logged out ─► waiting for a session
                                 ├─ failed ─► backing off (ReconnectPolicy) ─► waiting for a session
                                 └─ token expired ─► waiting for a new token file (TokenWatch) ─► waiting ...

Logged in only during the configured market sessions (`SessionWait`; with a
future among STREAM_TICKERS, CME's sessions too), it logs in, subscribes every
service keyed by ticker (`common/feed/services/`) for the STREAM_TICKERS it
streams (LEVELONE_EQUITIES and CHART_EQUITY a stock's and an index's,
LEVELONE_FUTURES and CHART_FUTURES a future's),
and reads in bursts (`Pacing`), every CONTROL_EVERY taking the options
actor's wishes and moving LEVELONE_OPTIONS to them by difference
(`common/feed/option_contracts.py`). Nothing arriving, not even a heartbeat,
for STREAM_WATCHDOG is a stall; every failure ends in a fresh connection or
a wait for a person; a stop request ends every state at its next wake. Every
dependency comes in (the clients, the clocks, the actor's duties), so the
machine runs in a test against a fake stream on fake time.
"""

from __future__ import annotations

import asyncio
import datetime
import logging
import random
import time
from collections.abc import Callable
from typing import Any, Protocol

from schwab.client import AsyncClient, Client
from schwab.streaming import StreamClient, UnexpectedResponse, UnparsableMessage
from websockets.exceptions import ConnectionClosed

from common import symbols
from common.config import Config
from common.feed.frames import FramePublisher
from common.feed.market_hours import (
    CME,
    EXCHANGE,
    CombinedSchedule,
    FuturesSchedule,
    MarketSchedule,
    Window,
    regular_extra_for,
)
from common.feed.option_contracts import (
    OptionContracts,
    apply_option_changes,
    take_wishes,
)
from common.feed.reconnect_policy import ReconnectPolicy
from common.feed.schwab_client import force_refresh, make_client, make_stream_client
from common.feed.schwab_socket import Pacing, finish
from common.feed.service import TICKERS
from common.feed.services import SERVICES
from common.feed.streamer import (
    Backoff,
    CheckedDecoder,
    CommandTimeout,
    Stalled,
    is_token_expired,
    unparsable,
    within,
)
from common.feed.token_watch import TokenWatch
from common.feed.waiting import Idle, SessionWait, utc
from common.observe.stats import ActorStats

#: How long one read waits before the loop looks at its control socket and the clock.
POLL = 0.25
#: Under load, the control socket, the option wish and the actor's tick are looked at this often, not per message.
CONTROL_EVERY = 0.05
#: After LOGOUT, what Schwab still sends is read until it closes the socket or is quiet this long.
LOGOUT_QUIET = 2.0


class Clients(Protocol):
    """Where the connection's schwab-py clients come from; a test's fake hands out scripted streams."""

    def stream(self) -> StreamClient:
        """A new, not yet logged-in stream client."""
        ...

    def refresh(self) -> None:
        """Refresh the access token before the next request: Schwab refused it before its expiry."""
        ...

    def forget(self) -> None:
        """Build the clients again, from a new token file."""
        ...

    def market_hours(self, day: datetime.date) -> dict:
        """Schwab's market hours of `day` for equities (blocking: called on a thread)."""
        ...


class SchwabClients:
    """The real clients, Schwab's or the simulator's (`common/feed/schwab_client.py`), built when first needed."""

    def __init__(self, config: Config):
        self.config = config
        self.client: AsyncClient | None = None
        self.rest_client: Client | None = None

    def stream(self) -> StreamClient:
        if self.client is None:
            self.client = make_client(self.config, asyncio=True)
        return make_stream_client(self.client)

    def refresh(self) -> None:
        if self.client is not None:
            force_refresh(self.client)

    def forget(self) -> None:
        self.client = self.rest_client = None

    def market_hours(self, day: datetime.date) -> dict:
        if self.rest_client is None:
            self.rest_client = make_client(self.config, asyncio=False)
        response = self.rest_client.get_market_hours([self.rest_client.MarketHours.Market.EQUITY], date=day)
        response.raise_for_status()
        return response.json()


class Connection:
    """The connection's state machine: session hours, connect, read, watchdog and reconnect; nothing else.

    `wishes` returns the next frame waiting on the options actor's control
    channel (None when none is); `report` publishes the actor's counters at
    once, for a status worth telling now; `idle` carries the clocks and the
    actor's tick and stop request; `rng` is the backoff's jitter, `poll` how
    long one read waits, `epoch` the clock token ages are measured on.
    """

    def __init__(self, config: Config, frames: FramePublisher, wishes: Callable[[], Any], clients: Clients,
                 idle: Idle, stats: ActorStats, logger: logging.Logger, report: Callable[[], None],
                 rng: Callable[[], float] = random.random, poll: float = POLL, epoch: Callable[[], float] = time.time):
        self.config = config
        self.frames = frames
        self.wishes = wishes
        self.clients = clients
        self.idle = idle
        self.stats = stats
        self.log = logger
        self.report = report
        self.poll = poll
        self.contracts = OptionContracts(config.stream_max_keys)
        exchange = MarketSchedule(clients.market_hours, config.market_sessions, config.market_hours == "always",
                                  logger, regular_extra_for(config.tickers))
        # Logged in whenever a calendar a streamed service's keys trade on is open (futures on CME's, nearly
        # around the clock); the options, keyed by contract, trade in the exchange's.
        calendars = {service.calendar for service in SERVICES.values()
                     if any(symbols.kind_of(ticker) in service.instruments for ticker in config.tickers)}
        schedules = {EXCHANGE: exchange, CME: FuturesSchedule()}
        schedule = exchange if exchange.always_open or calendars == {EXCHANGE} else CombinedSchedule(
            [schedules[calendar] for calendar in sorted(calendars)])
        self.sessions = SessionWait(schedule.plan, config.market_lead, idle, stats, logger)
        self.policy = ReconnectPolicy(Backoff(config.stream_backoff_min, config.stream_backoff_max, rng),
                                      config.stream_limit_backoff, idle.monotonic)
        self.tokens = TokenWatch(config.schwab_token_path, logger, simulated=config.uses_simulator,
                                 poll=config.token_poll_interval, now=epoch)

    async def run(self) -> None:
        """Until a stop is requested: stream each session, and recover from whatever ends a connection."""
        while not self.idle.stopping():
            window = await self.sessions.next_window()
            if window is None:
                return
            try:
                await self.stream(window)
                self.policy.reset()
            except Exception as error:  # every failure ends in a fresh connection, or a wait for a person
                if self.idle.stopping():
                    return
                if is_token_expired(error):
                    await self.wait_for_token(error)
                    continue
                await self.reconnect_after(error)

    # ---- one connection --------------------------------------------------

    async def stream(self, window: Window) -> None:
        """Log in, subscribe everything, and read until the session ends or the connection fails."""
        self.tokens.check()
        stream = self.clients.stream()
        monotonic = self.idle.monotonic
        decoder = CheckedDecoder(self.frames.on_data, self.log, self._skipped, monotonic, self._entitled)
        stream.set_json_decoder(decoder)
        self.frames.reset()
        self.contracts.restart()
        timeout, tickers = self.config.stream_command_timeout, list(self.config.tickers)
        self.stats.status = "connecting"
        self.log.info("logging in", extra={"source": self.config.stream_source, "tickers": tickers,
                                            "session_end": utc(window.end)})
        try:
            await within(timeout, "ADMIN LOGIN", stream.login())
            for service in SERVICES.values():
                keys = [ticker for ticker in tickers if symbols.kind_of(ticker) in service.instruments]
                if service.keys == TICKERS and keys:
                    await within(timeout, f"{service.name} SUBS", service.subscription(stream, keys))
            self.stats.status = "running"
            self.policy.streaming()
            self.log.info("streaming")
            decoder.last_frame = monotonic()
            next_control = 0.0
            pacing = Pacing(stream)
            while not self.idle.stopping():
                await self.read(stream, decoder)
                if not pacing.backlog() and self.frames.flush():
                    await pacing.rest()  # not after a message whose records filled their own frames
                now = monotonic()
                if now >= next_control:
                    next_control = now + CONTROL_EVERY
                    self.frames.flush()  # a burst longer than CONTROL_EVERY, before waiting on commands
                    if self.idle.clock.now() >= window.end:
                        break
                    take_wishes(self.wishes, self.contracts)
                    await apply_option_changes(stream, self.contracts, self.log, timeout)
                    self.idle.tick()
            await self.log_out(stream)
        finally:
            try:
                await finish(stream)
            finally:
                self.frames.flush()  # what the last messages made, before the books are reset

    def _entitled(self, entitlement: str | None) -> None:
        """Schwab's LOGIN reply said what the account is: kept for streaming_metrics and the status page. Whether
        the data is in fact delayed is each item's own `delayed` (common/feed/frames.py)."""
        self.stats.entitlement = entitlement
        self.log.info("logged in", extra={"entitlement": entitlement})

    async def read(self, stream: StreamClient, decoder: CheckedDecoder) -> None:
        """One message, or none within `poll`; Stalled once nothing came for STREAM_WATCHDOG."""
        try:
            async with asyncio.timeout(self.poll):  # no task per read, unlike wait_for
                await stream.handle_message()
        except TimeoutError:
            silent = self.idle.monotonic() - decoder.last_frame
            if silent > self.config.stream_watchdog:
                raise Stalled(f"no frame and no heartbeat for {silent:.1f} s "
                              f"(STREAM_WATCHDOG={self.config.stream_watchdog:g} s)") from None
        except UnparsableMessage as error:
            self._skipped()
            self.log.error("malformed frame skipped", extra={"content": unparsable(error)})

    async def log_out(self, stream: StreamClient) -> None:
        """Log out, then handle everything Schwab sent before it closed the socket (or went quiet).

        Data that arrived while schwab-py awaited LOGOUT's answer waits in its
        queue even when the socket closed first: it is handled here too.
        """
        self.stats.status = "stopping" if self.idle.stopping() else "logging_out"
        try:
            await within(self.config.stream_command_timeout, "ADMIN LOGOUT", stream.logout())
        except CommandTimeout as error:
            self.log.warning("logout not acknowledged", extra={"reason": str(error)})
        except ConnectionClosed:
            pass  # closed before it answered; what came before the close is handled below
        while True:
            try:
                await asyncio.wait_for(stream.handle_message(), LOGOUT_QUIET)
            except UnexpectedResponse:
                continue  # a late answer to LOGOUT
            except (ConnectionClosed, TimeoutError):
                break
        self.log.info("logged out", extra={"at": utc(self.idle.clock.now())})

    def _skipped(self) -> None:
        self.stats.errors += 1

    # ---- failures --------------------------------------------------------

    async def reconnect_after(self, error: Exception) -> None:
        """Count and log why the connection ended, then wait out the backoff."""
        retry = self.policy.after(error)
        if retry.cause.name == "access_token_rejected":
            self.clients.refresh()
        self.stats.reconnected(retry.cause.name)
        self.stats.status = retry.status
        self.log.log(retry.level, "connection lost; reconnecting", extra={
            "cause": retry.cause.name, "detail": retry.cause.detail, "retry_in_s": round(retry.delay, 2),
            "reconnects": sum(self.stats.reconnects.values())})
        self.report()
        await self.idle.wait(retry.delay)

    async def wait_for_token(self, error: Exception) -> None:
        """Say once what a person must do, then wait (idle) until a new token file appears."""
        self.stats.status = "token_expired"
        self.stats.errors += 1
        self.tokens.expired(error)
        self.report()
        if await self.tokens.wait_for_new(self.idle):
            self.clients.forget()
            self.policy.reset()
