"""ingest: the one Schwab streamer connection, published onto the bus.

Schwab allows one streamer connection per user, so ingest owns it for every
service: LEVELONE_EQUITIES and CHART_EQUITY for STREAM_TICKERS, and
LEVELONE_OPTIONS for whatever contract set the options actor asks for. Each
Schwab message's records join one frame per kind, with those of the
messages read in the same burst: between bursts the socket is left unread
for PACE, so what arrives meanwhile is read, decoded and published together.
Without Schwab credentials the same real schwab-py client is aimed at the
simulator.

`Connection` keeps that connection up for months: it is logged in only
during the configured market sessions, reconnects after every kind of
failure with capped backoff, and waits quietly for a new token file when the
refresh token has expired. The pure pieces are in `common/feed/streamer.py`.

With `STREAM_RECORD` it also records every `data` payload it decodes; with
`STREAM_SOURCE=replay` it logs in nowhere and `replay` feeds such a recording
to the same decoder instead (`common/feed/replay.py`), for peak-throughput runs.
"""

from __future__ import annotations

import asyncio
import datetime
import logging
import time
from collections.abc import Awaitable
from typing import Any

import msgspec
from schwab.client import AsyncClient
from schwab.streaming import (
    StreamClient,
    UnexpectedResponse,
    UnexpectedResponseCode,
    UnparsableMessage,
)
from websockets.exceptions import ConnectionClosed

from common.actor import Actor
from common.feed import edge
from common.feed.edge import EQUITY_FIELDS, OPTION_FIELDS, LogLimiter, Rejection
from common.feed.levelone import EquityBook, Incomplete, OptionBook, bar_record
from common.feed.market_hours import MarketSchedule, Window, clock_from_spec
from common.feed.replay import Recorder, play
from common.feed.schwab_client import force_refresh, make_client, make_stream_client
from common.feed.streamer import (
    REFRESH_TOKEN_LIFETIME,
    REFRESH_TOKEN_WARNING,
    SYMBOL_LIMIT,
    Backoff,
    CheckedDecoder,
    CommandTimeout,
    Stalled,
    TokenExpired,
    cause_of,
    is_token_expired,
    response_code,
    token_age,
    token_signature,
    unparsable,
)
from common.observe.stats import ActorStats
from common.transport.bus import Publisher, Subscriber
from common.transport.messages import Envelope, OptionSubscription

CONSUMERS = ("writer", "indicator", "options")
SERVICES = frozenset({edge.LEVELONE_EQUITIES, edge.CHART_EQUITY, edge.LEVELONE_OPTIONS})
#: How long one read waits before the loop looks at its control socket and the clock.
POLL = 0.25
#: Under load, the control socket, the option wish and the actor's tick are looked at this often, not per message.
CONTROL_EVERY = 0.05
#: After each burst of small messages the socket is left unread this long. Schwab (and the simulator) can send
#: hundreds of small messages a second; read one by one, each costs three turns of the event loop and a bus frame
#: per kind downstream. Read in bursts, they share the wake-ups and the frames; none waits longer than this.
#: A burst whose records were sent as they came (COALESCE_RECORDS) gains nothing by a rest, which costs a wake.
PACE = 0.01
#: Records of one burst share a frame per kind until they are this many: a frame this large gains nothing by
#: waiting (Schwab's throttled feed sends few large messages), and its ticks should not.
COALESCE_RECORDS = 100
#: While idle (market closed, backing off, waiting for a token), the loop wakes this often: near-zero CPU.
IDLE_TICK = 1.0
#: A connection that streamed this long before failing starts the backoff from its minimum again.
HEALTHY_AFTER = 60.0


class FramePublisher:
    """Each message's data, decoded and checked at the edge and merged per key: one bus frame per kind.

    The records of the messages between two `flush` calls (one burst of
    reads) share their frames, until there are COALESCE_RECORDS of them;
    call `flush` when a burst ends, before the books are reset and when the
    connection ends.
    A rejected item is counted by reason (`streaming_metrics`, `/metrics`)
    and logged with an excerpt at most once a minute per symbol and reason;
    it never costs the other items of its message, nor the connection. With
    a `recorder`, each message's data is recorded as received, before it is
    decoded.
    """

    def __init__(self, publisher: Publisher, stats: ActorStats, logger: logging.Logger,
                 recorder: Recorder | None = None):
        self.publisher = publisher
        self.stats = stats
        self.logger = logger
        self.limiter = LogLimiter()
        self.recorder = recorder
        self.pending: dict[str, list[Any]] = {"trade": [], "quote": [], "bar": [], "option": []}
        self.reset()

    def reset(self) -> None:
        """Forget every symbol's fields: a new connection starts from fresh snapshots, so nothing stale leaks."""
        self.flush()
        self.equities = EquityBook()
        self.options = OptionBook()

    def flush(self) -> int:
        """Send what the last messages made, one frame per kind; how many records that was."""
        sent = 0
        for kind, records in self.pending.items():
            if records:
                self.publisher.send(kind, records)
                sent += len(records)
                self.pending[kind] = []
        self.stats.records_out += sent
        return sent

    def on_data(self, data: msgspec.Raw | list[Any]) -> None:
        started, received = time.perf_counter_ns(), time.time_ns()
        if self.recorder is not None:
            self.recorder.write(data)
        decoded = edge.decode(data, SERVICES)
        out = self.pending
        items = len(decoded.rejections)
        for entry in decoded.entries:
            items += len(entry.updates)
            for update in entry.updates:
                try:
                    self._merge(update, entry.frame_ms, received, out)
                except Incomplete as error:
                    self.reject(Rejection(entry.service, update.key, error.reason, str(error), ""))
        for rejection in decoded.rejections:
            self.reject(rejection)
        if sum(map(len, out.values())) >= COALESCE_RECORDS:
            self.flush()
        self.stats.records_in += items
        self.stats.batch(items, started)

    def _merge(self, update: edge.Update, frame_ms: int, received: int, out: dict[str, list[Any]]) -> None:
        if isinstance(update, edge.EquityUpdate):
            trade, quote = self.equities.merge(update, frame_ms, received)
            if trade:
                out["trade"].append(trade)
            if quote:
                out["quote"].append(quote)
        elif isinstance(update, edge.OptionUpdate):
            out["option"].append(self.options.merge(update, frame_ms, received))
        else:
            out["bar"].append(bar_record(update, received))

    def reject(self, rejection: Rejection) -> None:
        self.stats.rejected(rejection.reason)
        if self.limiter.allow(rejection.key, rejection.reason, time.monotonic()):
            self.logger.error("content item rejected", extra={
                "service": rejection.service, "key": rejection.key, "reason": rejection.reason,
                "detail": rejection.detail[:300], "item": rejection.excerpt})


class OptionContracts:
    """The union of every underlying's wanted contracts, and how to get there.

    `changes` is asked every CONTROL_EVERY; with 200 underlyings the union is
    thousands of contracts, so it is rebuilt only when a wish changes and
    compared only when the wish or the streaming set (replaced, never
    mutated in place) has moved since the last answer of nothing to do.
    """

    def __init__(self, max_keys: int) -> None:
        self.max_keys = max_keys
        self.wanted: dict[str, frozenset[str]] = {}
        self.streaming: frozenset[str] = frozenset()
        #: A wanted set Schwab refused (code 19): not asked for again until the wish changes.
        self.refused: frozenset[str] | None = None
        self._target: frozenset[str] | None = frozenset()
        self._settled: tuple[frozenset[str], frozenset[str] | None] | None = None

    def want(self, subscription: OptionSubscription) -> None:
        contracts = frozenset(subscription.contracts)
        if self.wanted.get(subscription.underlying) != contracts:
            self.wanted[subscription.underlying] = contracts
            self._target = None

    def target(self) -> frozenset[str]:
        if self._target is None:
            self._target = frozenset().union(*self.wanted.values())
        return self._target

    def changes(self) -> tuple[list[str], list[str]]:
        """(to add, to remove) to move the stream to the wanted set."""
        target = self.target()
        if self._settled is not None and self._settled[0] is target and self._settled[1] is self.streaming:
            return [], []
        if target == self.refused:
            return [], []
        to_add, to_remove = sorted(target - self.streaming), sorted(self.streaming - target)
        if not to_add and not to_remove:
            self._settled = (target, self.streaming)
        return to_add, to_remove


async def within(timeout: float, what: str, command: Awaitable[Any]) -> Any:
    """Every streamer command gets an answer in time, or the connection is given up."""
    try:
        return await asyncio.wait_for(command, timeout)
    except TimeoutError:
        raise CommandTimeout(f"no answer to {what} within {timeout:g} s") from None


async def apply_option_changes(stream: StreamClient, contracts: OptionContracts, logger: logging.Logger,
                               timeout: float) -> None:
    """UNSUBS what left the wanted set and ADD what entered it; contracts that stay are not touched."""
    to_add, to_remove = contracts.changes()
    if not to_add and not to_remove:
        return
    excess = len(contracts.streaming) - len(to_remove) + len(to_add) - contracts.max_keys
    if excess > 0:
        logger.error("option contracts over Schwab's per-service limit; asking for fewer",
                     extra={"limit": contracts.max_keys, "over_by": excess})
        to_add = to_add[:len(to_add) - excess]
        contracts.refused = contracts.target()  # asked once; again only when the wish changes
    if to_remove:
        await within(timeout, "LEVELONE_OPTIONS UNSUBS", stream.level_one_option_unsubs(to_remove))
        contracts.streaming -= set(to_remove)
    if to_add:
        subscribe = stream.level_one_option_add if contracts.streaming else stream.level_one_option_subs
        try:
            await within(timeout, "LEVELONE_OPTIONS ADD", subscribe(to_add, fields=list(OPTION_FIELDS)))
        except UnexpectedResponseCode as error:
            code, msg = response_code(error)
            if code != SYMBOL_LIMIT:
                raise
            contracts.refused = contracts.target()
            logger.error("Schwab refused option contracts over its symbol limit (code 19); streaming the rest",
                         extra={"refused": len(to_add), "streaming": len(contracts.streaming), "reason": msg})
            return
        contracts.streaming |= set(to_add)
    logger.info("option contracts changed",
                extra={"added": len(to_add), "removed": len(to_remove), "streaming": len(contracts.streaming)})


class Connection:
    """The one Schwab streamer connection: session hours, connect, read, watchdog and reconnect; nothing else."""

    def __init__(self, actor: Actor, frames: FramePublisher, control: Subscriber):
        self.actor = actor
        self.config = actor.config
        self.log = actor.log
        self.frames = frames
        self.control = control
        self.contracts = OptionContracts(self.config.stream_max_keys)
        self.clock = clock_from_spec(self.config.market_clock)
        self.schedule = MarketSchedule(self._market_hours, self.config.market_sessions,
                                       self.config.market_hours == "always", self.log)
        self.backoff = Backoff(self.config.stream_backoff_min, self.config.stream_backoff_max)
        self.client: AsyncClient | None = None
        self.rest_client: Any = None
        self.streaming_since: float | None = None

    @property
    def stopping(self) -> bool:
        return self.actor.shutdown.requested

    async def run(self) -> None:
        while not self.stopping:
            window = await self.wait_for_session()
            if window is None:
                return
            try:
                await self.stream(window)
                self.backoff.reset()
            except Exception as error:  # every failure ends in a fresh connection, or a wait for a person
                if self.stopping:
                    return
                if is_token_expired(error):
                    await self.wait_for_token(error)
                    continue
                await self.reconnect_after(error)

    # ---- session hours ---------------------------------------------------

    def _market_hours(self, day: datetime.date) -> dict:
        if self.rest_client is None:
            self.rest_client = make_client(self.config, asyncio=False)
        response = self.rest_client.get_market_hours([self.rest_client.MarketHours.Market.EQUITY], date=day)
        response.raise_for_status()
        return response.json()

    async def wait_for_session(self) -> Window | None:
        """Sleep, logged out, until shortly before the next session; the window to stream in (None: stopping)."""
        lead = datetime.timedelta(seconds=self.config.market_lead)
        wake, window = await asyncio.to_thread(self.schedule.plan, self.clock.now(), lead)
        if wake is None:
            return window
        self.actor.stats.status = "market_closed"
        self.log.info("market closed: logged out until shortly before the session",
                      extra={"wake_at": utc(wake), "session_start": utc(window.start),
                             "session_end": utc(window.end), "sessions": list(window.sessions)})
        while not self.stopping and self.clock.now() < wake:
            try:
                await asyncio.wait_for(self.clock.sleep_until(wake), IDLE_TICK)
            except TimeoutError:
                pass
            self.actor.tick()
        return None if self.stopping else window

    # ---- one connection --------------------------------------------------

    async def stream(self, window: Window) -> None:
        """Log in, subscribe everything, and read until the session ends or the connection fails."""
        self.check_token()
        if self.client is None:
            self.client = make_client(self.config, asyncio=True)
        stream = make_stream_client(self.client)
        decoder = CheckedDecoder(self.frames.on_data, self.log, self._skipped)
        stream.set_json_decoder(decoder)
        self.frames.reset()
        self.contracts.streaming = frozenset()
        self.contracts.refused = None
        timeout, tickers = self.config.stream_command_timeout, list(self.config.tickers)
        self.actor.stats.status = "connecting"
        self.log.info("logging in", extra={"source": self.config.stream_source, "tickers": tickers,
                                            "session_end": utc(window.end)})
        try:
            await within(timeout, "ADMIN LOGIN", stream.login())
            await within(timeout, "LEVELONE_EQUITIES SUBS",
                         stream.level_one_equity_subs(tickers, fields=list(EQUITY_FIELDS)))
            await within(timeout, "CHART_EQUITY SUBS", stream.chart_equity_subs(tickers))
            self.actor.stats.status = "running"
            self.streaming_since = time.monotonic()
            self.log.info("streaming")
            decoder.last_frame = time.monotonic()
            next_control = 0.0
            pacing = Pacing(stream)
            while not self.stopping:
                await self.read(stream, decoder)
                if not pacing.backlog() and self.frames.flush():
                    await pacing.rest()  # not after a message whose records filled their own frames
                now = time.monotonic()
                if now >= next_control:
                    next_control = now + CONTROL_EVERY
                    self.frames.flush()  # a burst longer than CONTROL_EVERY, before waiting on commands
                    if self.clock.now() >= window.end:
                        break
                    self.take_control()
                    await apply_option_changes(stream, self.contracts, self.log, timeout)
                    self.actor.tick()
            await self.log_out(stream)
        finally:
            try:
                await finish(stream)
            finally:
                self.frames.flush()  # what the last messages made, before the books are reset

    async def read(self, stream: StreamClient, decoder: CheckedDecoder) -> None:
        try:
            async with asyncio.timeout(POLL):  # no task per read, unlike wait_for
                await stream.handle_message()
        except TimeoutError:
            silent = time.monotonic() - decoder.last_frame
            if silent > self.config.stream_watchdog:
                raise Stalled(f"no frame and no heartbeat for {silent:.1f} s "
                              f"(STREAM_WATCHDOG={self.config.stream_watchdog:g} s)") from None
        except UnparsableMessage as error:
            self._skipped()
            self.log.error("malformed frame skipped", extra={"content": unparsable(error)})

    def take_control(self) -> None:
        while (frame := self.control.recv_nowait()) is not None:
            if isinstance(frame, Envelope):
                for subscription in frame.records:
                    self.contracts.want(subscription)

    async def log_out(self, stream: StreamClient) -> None:
        """Log out, then handle everything Schwab sent before it closed the socket (or went quiet).

        Data that arrived while schwab-py awaited LOGOUT's answer waits in its
        queue even when the socket closed first: it is handled here too.
        """
        self.actor.stats.status = "stopping" if self.stopping else "logging_out"
        try:
            await within(self.config.stream_command_timeout, "ADMIN LOGOUT", stream.logout())
        except CommandTimeout as error:
            self.log.warning("logout not acknowledged", extra={"reason": str(error)})
        except ConnectionClosed:
            pass  # closed before it answered; what came before the close is handled below
        while True:
            try:
                await asyncio.wait_for(stream.handle_message(), 2.0)
            except UnexpectedResponse:
                continue  # a late answer to LOGOUT
            except (ConnectionClosed, TimeoutError):
                break
        self.log.info("logged out", extra={"at": utc(self.clock.now())})

    def _skipped(self) -> None:
        self.actor.stats.errors += 1

    # ---- failures --------------------------------------------------------

    async def reconnect_after(self, error: Exception) -> None:
        """Count and log why the connection ended, then wait out the backoff."""
        cause = cause_of(error, self.config.stream_limit_backoff)
        if self.streaming_since is not None and time.monotonic() - self.streaming_since > HEALTHY_AFTER:
            self.backoff.reset()
        self.streaming_since = None
        if cause.name == "access_token_rejected" and self.client is not None:
            force_refresh(self.client)
        delay = self.backoff.next(cause.floor)
        stats = self.actor.stats
        stats.reconnected(cause.name)
        stats.status = cause.name if cause.name == "connection_limit" else "reconnecting"
        level = logging.ERROR if cause.floor else logging.WARNING
        self.log.log(level, "connection lost; reconnecting", extra={
            "cause": cause.name, "detail": cause.detail, "retry_in_s": round(delay, 2),
            "reconnects": sum(stats.reconnects.values())})
        stats.maybe_publish(self.actor.publisher, force=True)
        await self.idle(delay)

    def check_token(self) -> None:
        """Refuse to start on a token Schwab will refuse; warn a day ahead."""
        if self.config.uses_simulator:
            return
        age = token_age(self.config.schwab_token_path)
        if age >= REFRESH_TOKEN_LIFETIME:
            raise TokenExpired(f"the token file is {age / 86_400:.1f} days old; Schwab's refresh tokens last 7")
        if age >= REFRESH_TOKEN_LIFETIME - REFRESH_TOKEN_WARNING:
            self.log.warning("Schwab refresh token expires soon: run `make login` on this host",
                             extra={"hours_left": round((REFRESH_TOKEN_LIFETIME - age) / 3600, 1)})

    async def wait_for_token(self, error: Exception) -> None:
        """Log once what a person must do, then wait (idle) until a new token file appears."""
        path = self.config.schwab_token_path
        stats = self.actor.stats
        stats.status = "token_expired"
        stats.errors += 1
        self.log.error("Schwab refresh token expired: run `make login` on this host to create a new token file; "
                       "ingest waits for it and resumes by itself",
                       extra={"token_path": str(path), "reason": str(error) or repr(error)})
        stats.maybe_publish(self.actor.publisher, force=True)
        seen = token_signature(path)
        while not self.stopping:
            await self.idle(self.config.token_poll_interval)
            current = token_signature(path)
            if current is None or current == seen:
                continue
            seen = current
            try:
                fresh = self.config.uses_simulator or token_age(path) < REFRESH_TOKEN_LIFETIME
            except (OSError, ValueError, KeyError) as unreadable:
                self.log.error("the new token file cannot be read; still waiting", extra={"reason": repr(unreadable)})
                continue
            if fresh:
                self.client = self.rest_client = None
                self.backoff.reset()
                self.log.info("new token file found; logging in again", extra={"token_path": str(path)})
                return

    async def idle(self, seconds: float) -> None:
        """Wait without work: the loop wakes once a second for counters and a stop request."""
        until = time.monotonic() + seconds
        while not self.stopping and (left := until - time.monotonic()) > 0:
            await asyncio.sleep(min(IDLE_TICK, left))
            self.actor.tick()


def utc(moment: datetime.datetime) -> str:
    return moment.astimezone(datetime.timezone.utc).isoformat()


class Pacing:
    """Reads schwab-py's socket in bursts: what is ready is handled at once; then the socket is left unread.

    schwab-py has no public way to see whether a message is ready or to stop
    reading for a while; this and `finish` are the places that reach into its
    private attributes (`_overflow_items`, `_socket`: a legacy websockets
    protocol, whose `messages` and `transport` are its own).
    """

    def __init__(self, stream: StreamClient, pace: float = PACE):
        self.stream = stream
        self.pace = pace

    def backlog(self) -> bool:
        """Is a message received and waiting, so the next read takes it without waiting?"""
        socket = self.stream._socket
        return bool(self.stream._overflow_items) or (socket is not None and bool(socket.messages))

    async def rest(self) -> None:
        """`pace` seconds with the socket unread: what arrives waits in the kernel, to be read as one burst.
        A transport already paused (its reader's buffer is full) is left as it is."""
        socket = self.stream._socket
        transport = None if socket is None else socket.transport
        if transport is None or transport.is_closing() or not transport.is_reading():
            return
        transport.pause_reading()
        try:
            await asyncio.sleep(self.pace)
        finally:
            transport.resume_reading()


async def finish(stream: StreamClient) -> None:
    """Hand the handlers what schwab-py received but has not handed over yet, then close the socket.

    Data arriving while schwab-py awaits a command's answer (an option ADD, say)
    waits in a private queue that only `handle_message` empties; a connection
    given up with ticks in it would lose them. schwab-py has no public call
    to see that queue, nor one to close the socket: with `Pacing`, this is
    where ingest reaches into its private attributes.
    """
    socket = stream._socket
    try:
        while stream._overflow_items:
            await stream.handle_message()
    finally:
        if socket is not None:
            try:
                await asyncio.wait_for(socket.close(), 2.0)
            except (TimeoutError, ConnectionClosed, OSError):
                socket.transport.abort()


async def replay(actor: Actor, frames: FramePublisher, control: Subscriber) -> None:
    """STREAM_REPLAY's recording through `frames`, once, as fast as it goes; then idle until stopped.

    It ends with one log line, "replay finished", saying how many lines and
    records it took how long, and the status `replay_done`. Exiting instead
    would have supervisord start it again, and replay again.
    """
    path, stats = actor.config.stream_replay, actor.stats
    stats.status = "running"
    actor.log.info("replaying a recording", extra={"source": "replay", "path": str(path)})
    items, records = stats.records_in, stats.records_out

    def between() -> None:
        frames.flush()
        while control.recv_nowait() is not None:
            pass  # no contract set to change: the recording streams what it streamed
        actor.tick()

    played = await play(path, frames.on_data, between, lambda: actor.shutdown.requested)
    frames.flush()
    if actor.shutdown.requested:
        return
    seconds, records = max(played.seconds, 1e-9), stats.records_out - records
    actor.log.info("replay finished", extra={
        "path": str(path), "lines": played.lines, "torn": played.torn, "items": stats.records_in - items,
        "records": records, "seconds": round(played.seconds, 3), "lines_per_second": round(played.lines / seconds),
        "records_per_second": round(records / seconds)})
    stats.status = "replay_done"
    stats.maybe_publish(actor.publisher, force=True)
    while not actor.shutdown.requested:
        await asyncio.sleep(IDLE_TICK)
        between()


async def run(actor: Actor) -> None:
    await asyncio.to_thread(actor.wait_for_consumers, *CONSUMERS)
    config = actor.config
    recorder = Recorder(config.stream_record, lambda error: recording_failed(actor, error)) \
        if config.stream_record else None
    control = actor.subscriber()
    control.subscribe("options", "option_subscription")
    frames = FramePublisher(actor.publisher, actor.stats, actor.log, recorder=recorder)
    try:
        if config.replays:
            await replay(actor, frames, control)
        else:
            await Connection(actor, frames, control).run()
    finally:
        control.close()
        if recorder is not None:
            recorder.close()
    actor.stopped(reconnects=actor.stats.reconnects)


def recording_failed(actor: Actor, error: OSError) -> None:
    actor.stats.errors += 1
    actor.log.error("recording stopped: a write to STREAM_RECORD failed; streaming goes on",
                    extra={"path": str(actor.config.stream_record), "reason": str(error)})


def main() -> None:
    asyncio.run(run(Actor("ingest", journaled=True)))


if __name__ == "__main__":
    main()
