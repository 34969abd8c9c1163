"""Stand-ins for what ingest's connection talks to: fake time, a scripted schwab-py stream, its clients, the actor.

Nothing here touches a socket, a process or the wall clock: time moves only
when a script or a wait moves it, so a test crosses a night, a watchdog
period or a backoff at once, and always the same way.
"""

from __future__ import annotations

import asyncio
import datetime
import json
import logging
import math
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from schwab.streaming import UnexpectedResponseCode, UnparsableMessage
from websockets.exceptions import ConnectionClosedOK
from websockets.frames import Close

from common.config import Config, load
from common.feed.connection import Connection
from common.feed.market_hours import NEW_YORK
from common.feed.waiting import Idle
from common.observe.stats import ActorStats
from common.simulator import protocol
from common.transport.messages import Envelope, OptionSubscription
from tests.helpers.recordings import KeptFrames, frame_publisher
from tests.helpers.schwab_frames import raw_frames

#: A Monday: the regular session is 09:30-16:00 New York.
MONDAY = datetime.date(2026, 3, 2)
WATCHDOG = 30.0


def new_york(day: datetime.date, hour: int, minute: int = 0) -> datetime.datetime:
    return datetime.datetime(day.year, day.month, day.day, hour, minute, tzinfo=NEW_YORK)


def weekday_hours(day: datetime.date) -> dict:
    """Schwab's market-hours body for `day` on a calendar without holidays: 07:00-20:00 on weekdays, in three
    sessions (the simulator's body consults the NYSE calendar, whose pandas takes a second to import)."""
    product: dict[str, Any] = {"date": day.isoformat(), "marketType": "EQUITY", "product": "EQ",
                               "isOpen": day.weekday() < 5}
    if product["isOpen"]:
        def span(start: int, end: int) -> list[dict[str, str]]:
            return [{"start": new_york(day, start // 100, start % 100).isoformat(),
                     "end": new_york(day, end // 100, end % 100).isoformat()}]

        product["sessionHours"] = {"preMarket": span(700, 930), "regularMarket": span(930, 1600),
                                   "postMarket": span(1600, 2000)}
    return {"equity": {"EQ": product}}


class FakeTime:
    """The market clock (`now`, `sleep_until`), the monotonic clock and `sleep`, and the epoch: one fake time.

    Every wait returns at once, having moved the time by what it waited, and
    gives the event loop one turn; a market-clock wait moves it at most
    `longest_nap` (as a real one wakes every IDLE_TICK), so a test can stop it midway.
    """

    def __init__(self, start: datetime.datetime, longest_nap: float = math.inf):
        self.start = start
        self.longest_nap = longest_nap
        self.elapsed = 0.0
        self.slept: list[float] = []

    def now(self) -> datetime.datetime:
        return self.start + datetime.timedelta(seconds=self.elapsed)

    def monotonic(self) -> float:
        return 1000.0 + self.elapsed

    def epoch(self) -> float:
        return self.start.timestamp() + self.elapsed

    def advance(self, seconds: float) -> None:
        self.elapsed += seconds

    async def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.advance(seconds)
        await asyncio.sleep(0)

    async def sleep_until(self, when: datetime.datetime, stop: asyncio.Event | None = None) -> bool:
        self.advance(min(self.longest_nap, max(0.0, (when - self.now()).total_seconds())))
        await asyncio.sleep(0)
        return self.now() >= when


class Duties:
    """The actor's side of a wait: its tick (counted, with a hook a test scripts) and its stop request."""

    def __init__(self) -> None:
        self.requested = False
        self.ticks = 0
        self.on_tick: Callable[[], None] = lambda: None

    def stopping(self) -> bool:
        return self.requested

    def stop(self) -> None:
        self.requested = True

    def tick(self) -> None:
        self.ticks += 1
        self.on_tick()


# ---- what a scripted stream does on each read -------------------------------------------------------------


@dataclass(frozen=True)
class Deliver:
    """A message arrives, `after` seconds after the last step: it goes through the stream's JSON decoder."""

    message: dict | str
    after: float = 0.0


@dataclass(frozen=True)
class Stall:
    """Nothing arrives for `seconds`, and then still nothing: the read waits until the loop gives up on it."""

    seconds: float


@dataclass(frozen=True)
class Fail:
    """The read raises `error` (the socket closed, Schwab answered a code, ...)."""

    error: BaseException


@dataclass(frozen=True)
class Call:
    """Something else happens meanwhile (a wish is sent, a stop requested); the next step follows in the same read."""

    action: Callable[[], None]


Step = Deliver | Stall | Fail | Call


def bars() -> dict:
    """A CHART_EQUITY message from the captured frames: two bars (MSFT, GOOG)."""
    return {"data": raw_frames()["CHART_EQUITY"]}


def heartbeat() -> dict:
    return protocol.heartbeat(0)


def coded(code: int, msg: str = "refused") -> UnexpectedResponseCode:
    """Schwab's answer to a command with a non-zero code, as schwab-py raises it."""
    request = {"service": "ADMIN", "command": "LOGIN", "requestid": "1"}
    return UnexpectedResponseCode(protocol.response(request, code, msg, 0), f"code {code}")


def closed() -> ConnectionClosedOK:
    return ConnectionClosedOK(Close(1000, "bye"), Close(1000, "bye"), True)


class FakeStream:
    """A schwab-py `StreamClient` that plays a script: each `handle_message` takes the next steps.

    Commands answer at once and are kept in `sent` as (name, symbols), unless
    `errors` names them (by method name): then they raise that error, once;
    those `hang` names are never answered. After
    `logout` the rest of the script is what Schwab sent before closing the
    socket; then reads raise ConnectionClosedOK. A script that runs out while
    logged in fails the read with an AssertionError, which the connection
    takes for a failure: a test never hangs on a short script.
    """

    def __init__(self, *script: Step, errors: dict[str, BaseException] | None = None,
                 hang: frozenset[str] = frozenset()):
        self.script = deque(script)
        self.errors = dict(errors or {})
        self.hang = hang
        self.sent: list[tuple[str, list[str]]] = []
        self.decoder: Any = None
        self.logged_out = False
        self.time: FakeTime | None = None  # FakeClients's, once handed out
        # schwab-py's private names, read only by common/feed/schwab_socket.py: no socket, nothing queued.
        self._socket = None
        self._overflow_items: deque[dict] = deque()

    def set_json_decoder(self, decoder: Any) -> None:
        self.decoder = decoder

    async def _command(self, name: str, symbols: list[str] | None = None) -> None:
        await asyncio.sleep(0)
        self.sent.append((name, list(symbols or ())))
        if name in self.hang:
            await asyncio.Event().wait()
        if name in self.errors:
            raise self.errors.pop(name)

    async def login(self) -> None:
        await self._command("login")

    async def logout(self) -> None:
        self.logged_out = True
        await self._command("logout")

    async def level_one_equity_subs(self, symbols: list[str], *, fields: Any = None) -> None:
        await self._command("level_one_equity_subs", symbols)

    async def chart_equity_subs(self, symbols: list[str], *, fields: Any = None) -> None:
        await self._command("chart_equity_subs", symbols)

    async def level_one_futures_subs(self, symbols: list[str], *, fields: Any = None) -> None:
        await self._command("level_one_futures_subs", symbols)

    async def chart_futures_subs(self, symbols: list[str]) -> None:
        await self._command("chart_futures_subs", symbols)

    async def level_one_option_subs(self, symbols: list[str], *, fields: Any = None) -> None:
        await self._command("level_one_option_subs", symbols)

    async def level_one_option_add(self, symbols: list[str], *, fields: Any = None) -> None:
        await self._command("level_one_option_add", symbols)

    async def level_one_option_unsubs(self, symbols: list[str]) -> None:
        await self._command("level_one_option_unsubs", symbols)

    async def handle_message(self) -> None:
        while self.script and isinstance(self.script[0], Call):
            self.script.popleft().action()
        if not self.script:
            if self.logged_out:
                raise closed()
            raise AssertionError("the script ran out while logged in")
        step = self.script.popleft()
        if isinstance(step, Fail):
            raise step.error
        assert self.time is not None, "handed out by FakeClients"
        if isinstance(step, Stall):
            self.time.advance(step.seconds)
            await asyncio.Event().wait()  # cancelled by the read's timeout
        assert isinstance(step, Deliver)
        self.time.advance(step.after)
        raw = step.message if isinstance(step.message, str) else json.dumps(step.message)
        try:
            self.decoder.decode_json_string(raw)
        except json.JSONDecodeError as error:
            raise UnparsableMessage(raw, error, "unparsable") from None


class FakeTransport:
    """A websocket's asyncio transport: whether it reads, and what was done to it."""

    def __init__(self, reading: bool = True, closing: bool = False):
        self.reading = reading
        self.closing = closing
        self.calls: list[str] = []

    def is_reading(self) -> bool:
        return self.reading

    def is_closing(self) -> bool:
        return self.closing

    def pause_reading(self) -> None:
        self.calls.append("pause")
        self.reading = False

    def resume_reading(self) -> None:
        self.calls.append("resume")
        self.reading = True

    def abort(self) -> None:
        self.calls.append("abort")


class FakeSocket:
    """A legacy websockets protocol as schwab-py holds it: received `messages`, its `transport`, `close`."""

    def __init__(self, transport: FakeTransport, close_error: BaseException | None = None):
        self.transport = transport
        self.messages: deque[str] = deque()
        self.close_error = close_error
        self.closed = False

    async def close(self) -> None:
        if self.close_error is not None:
            raise self.close_error
        self.closed = True


class FakeClients:
    """Hands out the scripted streams in order; when they are used up, requests a stop and refuses."""

    def __init__(self, time: FakeTime, duties: Duties, *streams: FakeStream):
        self.time = time
        self.duties = duties
        self.streams = deque(streams)
        self.handed: list[FakeStream] = []
        self.refreshed = 0
        self.forgotten = 0

    def stream(self) -> FakeStream:
        if not self.streams:
            self.duties.stop()
            raise RuntimeError("no more scripted connections")
        stream = self.streams.popleft()
        stream.time = self.time
        self.handed.append(stream)
        return stream

    def refresh(self) -> None:
        self.refreshed += 1

    def forget(self) -> None:
        self.forgotten += 1

    def market_hours(self, day: datetime.date) -> dict:
        return weekday_hours(day)


class Control:
    """The options actor's control channel: wishes sent, taken by the connection in order."""

    def __init__(self) -> None:
        self.frames: deque[Envelope] = deque()

    def send(self, underlying: str, *contracts: str) -> None:
        wish = OptionSubscription(underlying, list(contracts), time.time_ns())
        self.frames.append(Envelope("desk/options/option_subscription", 1, len(self.frames) + 1, 0, [wish]))

    def receive(self) -> Envelope | None:
        return self.frames.popleft() if self.frames else None


class LogLines(logging.Handler):
    """Every record a logger emits, for a test to read its message, level and JSON fields."""

    def __init__(self, name: str) -> None:
        super().__init__(logging.DEBUG)
        self.records: list[logging.LogRecord] = []
        self.logger = logging.getLogger(name)
        self.logger.setLevel(logging.DEBUG)
        self.logger.handlers = [self]
        self.logger.propagate = False

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)

    def messages(self) -> list[str]:
        return [record.getMessage() for record in self.records]

    def named(self, message: str) -> list[logging.LogRecord]:
        return [record for record in self.records if record.getMessage() == message]


def write_token(path: Path, created: float) -> None:
    """A token file as schwab-py writes it, made at `created` (epoch seconds); replaced, so its inode is new."""
    fresh = path.with_name(path.name + ".new")
    fresh.write_text(json.dumps({"creation_timestamp": created, "token": {"refresh_token": "r"}}))
    fresh.replace(path)


def schwab_config(tmp_path: Path, **changes: Any) -> Config:
    """A Schwab (not simulator) configuration: tokens are checked; the regular session; MSFT and GOOG."""
    config = load({"STREAMING_VAR": str(tmp_path), "SCHWAB_APP_KEY": "key", "SCHWAB_APP_SECRET": "secret",
                   "SCHWAB_TOKEN_PATH": str(tmp_path / "token.json"), "STREAM_TICKERS": "MSFT,GOOG",
                   "STREAM_WATCHDOG": f"{WATCHDOG:g}s", "STREAM_BACKOFF_MIN": "1s", "STREAM_BACKOFF_MAX": "8s",
                   "STREAM_LIMIT_BACKOFF": "5m", "TOKEN_POLL_INTERVAL": "10s", "MARKET_LEAD": "5m"})
    return replace(config, **changes)


@dataclass
class Rig:
    """A Connection on fake time against scripted streams, and everything a test looks at afterwards."""

    config: Config
    time: FakeTime
    duties: Duties
    clients: FakeClients
    control: Control
    kept: KeptFrames
    stats: ActorStats
    log: LogLines
    reports: list[str] = field(default_factory=list)

    def connection(self) -> Connection:
        idle = Idle(self.duties.stopping, self.duties.tick, self.time, self.time.monotonic, self.time.sleep)
        frames = frame_publisher(self.kept)
        return Connection(self.config, frames, self.control.receive, self.clients, idle, self.stats,
                          self.log.logger, lambda: self.reports.append(self.stats.status), rng=lambda: 0.5,
                          poll=0.001, epoch=self.time.epoch)

    def run(self, timeout: float = 10.0) -> None:
        """Run the connection until it returns; `timeout` real seconds only guard against a broken test."""
        async def main() -> None:
            await asyncio.wait_for(self.connection().run(), timeout)

        asyncio.run(main())


def rig(tmp_path: Path, start: datetime.datetime, *streams: FakeStream, **changes: Any) -> Rig:
    """A rig whose clock starts at `start`, with a token file a day old."""
    clock, duties = FakeTime(start), Duties()
    config = schwab_config(tmp_path, **changes)
    write_token(config.schwab_token_path, clock.epoch() - 86_400)
    return Rig(config, clock, duties, FakeClients(clock, duties, *streams), Control(), KeptFrames(),
               ActorStats("ingest", interval=0), LogLines(f"test.ingest.{id(clock)}"))
