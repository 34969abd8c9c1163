"""When ingest may be logged in to Schwab: the market's streaming windows, and clocks to wait for them.

Schwab's market-hours endpoint is the authority, since it knows closures
announced at short notice; the NYSE calendar of exchange_calendars stands in
whenever it fails. That library pulls in pandas (tens of MB on a 512 MB host),
so it is imported only when the fallback is actually needed. Everything here
is pure except the clocks and the `fetch_day` callback.
"""

from __future__ import annotations

import asyncio
import logging
import math
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta, timezone
from time import monotonic
from typing import Any, Protocol
from zoneinfo import ZoneInfo

from common.symbols import is_index

NEW_YORK = ZoneInfo("America/New_York")
#: Config's session names (MARKET_SESSIONS) to the names of Schwab's `sessionHours`.
SCHWAB_SESSIONS = {"pre": "preMarket", "regular": "regularMarket", "post": "postMarket"}
#: Schwab's extended hours: pre-market from 07:00 New York, post-market for four hours after the close.
PRE_MARKET_OPEN = time(7)
POST_MARKET_HOURS = timedelta(hours=4)
#: CME Globex's trading day: from 18:00 New York the evening before to 17:00 (`futures_windows`).
CME_OPEN, CME_CLOSE = time(18), time(17)
#: The session calendars a Schwab service's keys trade on: the exchange's (NYSE's days, MARKET_SESSIONS' hours,
#: Schwab's market hours first) and CME Globex's (`FuturesSchedule`).
EXCHANGE, CME = "exchange", "cme"
#: Index options (SPX, SPXW, NDX, RUT) trade until 16:15 New York, a quarter hour past the stocks: a deployment
#: streaming an index keeps the regular session open that much longer (`regular_extra_for`).
INDEX_OPTIONS_EXTRA = timedelta(minutes=15)
#: Longer than any NYSE closure since 1933 (9/11 closed it for four sessions plus a weekend).
LOOKAHEAD_DAYS = 10
#: How far ahead an always-open market's window reaches; far enough never to be reached.
ALWAYS_OPEN_SPAN = timedelta(days=3650)
#: A wall-clock wait re-checks the time this often (real seconds), so a suspended
#: host or a clock step cannot make it oversleep by more than this.
MAX_NAP_S = 60.0


class MarketHoursError(ValueError):
    """A market-hours body that cannot be trusted; the message says what was wrong."""


@dataclass(frozen=True)
class Window:
    """One contiguous stretch to stream: the chosen sessions of a day that touch, merged."""

    start: datetime
    end: datetime
    sessions: tuple[str, ...]


class Clock(Protocol):
    def now(self) -> datetime:
        """The current time, timezone-aware UTC."""
        ...

    async def sleep_until(self, when: datetime, stop: asyncio.Event | None = None) -> bool:
        """Wait until `when` on this clock; False when `stop` was set first."""
        ...


async def _nap(seconds: float, stop: asyncio.Event | None) -> None:
    """Sleep `seconds` real seconds, less if `stop` is set meanwhile."""
    if stop is None:
        await asyncio.sleep(seconds)
        return
    try:
        await asyncio.wait_for(stop.wait(), seconds)
    except TimeoutError:
        pass


async def _sleep_until(now: Callable[[], datetime], speed: float, when: datetime, stop: asyncio.Event | None) -> bool:
    """Wait until `now()` reaches `when`, re-checking at least every MAX_NAP_S; False when `stop` was set first."""
    while stop is None or not stop.is_set():
        remaining = (when - now()).total_seconds()
        if remaining <= 0:
            return True
        await _nap(min(remaining / speed, MAX_NAP_S), stop)
    return False


class SystemClock:
    """The host's clock, for production."""

    def now(self) -> datetime:
        return datetime.now(timezone.utc)

    async def sleep_until(self, when: datetime, stop: asyncio.Event | None = None) -> bool:
        return await _sleep_until(self.now, 1.0, when, stop)


class ScaledClock:
    """Starts at `start` and runs `speed` times faster than real time, so a test can cross a weekend in seconds."""

    def __init__(self, start: datetime, speed: float = 1.0):
        if start.tzinfo is None:
            raise ValueError(f"clock start {start.isoformat()} has no UTC offset")
        if not (math.isfinite(speed) and speed > 0):
            raise ValueError(f"clock speed {speed} must be a positive number")
        self.start = start.astimezone(timezone.utc)
        self.speed = speed
        self._started = monotonic()

    def now(self) -> datetime:
        return self.start + timedelta(seconds=(monotonic() - self._started) * self.speed)

    async def sleep_until(self, when: datetime, stop: asyncio.Event | None = None) -> bool:
        return await _sleep_until(self.now, self.speed, when, stop)


def clock_from_spec(spec: str) -> Clock:
    """MARKET_CLOCK: '' is the system clock; 'ISO-TIME' or 'ISO-TIME*SPEED' a clock starting then, sped up."""
    spec = spec.strip()
    if not spec:
        return SystemClock()
    start_text, star, speed_text = spec.partition("*")
    try:
        start = datetime.fromisoformat(start_text.strip())
        speed = float(speed_text) if star else 1.0
        return ScaledClock(start, speed)
    except ValueError as error:
        raise ValueError(
            f"MARKET_CLOCK={spec!r} is not a start time with an offset, optionally sped up "
            f"(e.g. 2026-11-26T09:25:00-05:00 or 2026-11-26T09:25:00-05:00*3600): {error}"
        ) from None


def _merge(intervals: Mapping[str, tuple[datetime, datetime]]) -> list[Window]:
    """Windows from named intervals, those that touch or overlap merged, in time order, in New York time."""
    spans = sorted(
        (start.astimezone(NEW_YORK), end.astimezone(NEW_YORK), name) for name, (start, end) in intervals.items()
    )
    windows: list[Window] = []
    for start, end, name in spans:
        if windows and start <= windows[-1].end:
            last = windows[-1]
            windows[-1] = Window(last.start, max(last.end, end), (*last.sessions, name))
        else:
            windows.append(Window(start, end, (name,)))
    return windows


def _schwab_time(value: Any, where: str) -> datetime:
    try:
        parsed = datetime.fromisoformat(value)
    except (TypeError, ValueError):
        raise MarketHoursError(f"{where}={value!r} is not an ISO time") from None
    if parsed.tzinfo is None:
        raise MarketHoursError(f"{where}={value!r} has no UTC offset")
    return parsed


def regular_extra_for(tickers: Iterable[str]) -> timedelta:
    """How much longer than the stocks' the regular session runs for `tickers`: INDEX_OPTIONS_EXTRA with an
    index among them, whose options trade to 16:15; none otherwise."""
    return INDEX_OPTIONS_EXTRA if any(map(is_index, tickers)) else timedelta(0)


def windows_from_schwab(body: Mapping[str, Any], day: date, sessions: tuple[str, ...],
                        regular_extra: timedelta = timedelta(0)) -> list[Window]:
    """The windows of `day` in a `GET /marketdata/v1/markets?markets=equity` body, the regular session
    `regular_extra` longer; [] when closed."""
    equity = body.get("equity") if isinstance(body, Mapping) else None
    products = [p for p in equity.values() if isinstance(p, Mapping)] if isinstance(equity, Mapping) else []
    if len(products) != 1:
        raise MarketHoursError(f"expected one product under 'equity', got {str(body)[:200]}")
    product = products[0]
    if product.get("date") != day.isoformat():
        raise MarketHoursError(f"hours are for date {product.get('date')!r}, not {day.isoformat()}")
    is_open = product.get("isOpen")
    if not isinstance(is_open, bool):
        raise MarketHoursError(f"isOpen={is_open!r} is not true or false")
    if not is_open:
        return []
    hours = product.get("sessionHours")
    if not isinstance(hours, Mapping):
        raise MarketHoursError("an open day has no sessionHours")
    intervals: dict[str, tuple[datetime, datetime]] = {}
    for session in sessions:
        name = SCHWAB_SESSIONS[session]
        spans = hours.get(name)
        if not isinstance(spans, list) or not spans or not all(isinstance(s, Mapping) for s in spans):
            raise MarketHoursError(f"sessionHours.{name}={spans!r} is not a list of start/end pairs")
        start = min(_schwab_time(s.get("start"), f"sessionHours.{name}.start") for s in spans)
        end = max(_schwab_time(s.get("end"), f"sessionHours.{name}.end") for s in spans)
        if end <= start:
            raise MarketHoursError(f"sessionHours.{name} ends at {end.isoformat()}, not after its start")
        intervals[session] = (start, end + regular_extra if session == "regular" else end)
    return _merge(intervals)


def exchange_sessions(day: date) -> dict[str, tuple[datetime, datetime]]:
    """The NYSE's pre, regular and post sessions on `day` (none when closed), early closes included."""
    import exchange_calendars  # pulls in pandas: only when the calendar is actually needed

    calendar = exchange_calendars.get_calendar("XNYS", start=f"{day.year}-01-01", end=f"{day.year}-12-31")
    if not calendar.is_session(day.isoformat()):
        return {}
    opens = calendar.session_open(day.isoformat()).to_pydatetime().astimezone(NEW_YORK)
    closes = calendar.session_close(day.isoformat()).to_pydatetime().astimezone(NEW_YORK)
    return {
        "pre": (datetime.combine(day, PRE_MARKET_OPEN, NEW_YORK), opens),
        "regular": (opens, closes),
        "post": (closes, (closes + POST_MARKET_HOURS).astimezone(NEW_YORK)),
    }


def windows_from_calendar(day: date, sessions: tuple[str, ...], regular_extra: timedelta = timedelta(0)) -> list[Window]:
    """The windows of `day` by the NYSE calendar, the regular session `regular_extra` longer; [] when closed."""
    available = exchange_sessions(day)
    if "regular" in available:
        opens, closes = available["regular"]
        available["regular"] = (opens, closes + regular_extra)
    return _merge({s: available[s] for s in sessions if s in available})


class Schedule:
    """A calendar of windows to stream in, asked when to log in next."""

    def window_at_or_after(self, now: datetime) -> Window:
        raise NotImplementedError

    def plan(self, now: datetime, lead: timedelta) -> tuple[datetime | None, Window]:
        """When to wake to log in `lead` before the next window (None: stream now), and that window."""
        window = self.window_at_or_after(now)
        wake = window.start - lead
        return (None if now >= wake else wake), window


class MarketSchedule(Schedule):
    """Which window to stream next, from Schwab's hours (via `fetch_day`) or, failing that, the NYSE calendar.

    A day's windows are cached until the New York date changes, so an
    unscheduled closure announced later is still picked up on the next plan.
    """

    def __init__(
        self,
        fetch_day: Callable[[date], Mapping[str, Any]] | None,
        sessions: tuple[str, ...],
        always_open: bool = False,
        logger: logging.Logger | None = None,
        regular_extra: timedelta = timedelta(0),
    ):
        self.fetch_day = fetch_day
        self.sessions = sessions
        self.always_open = always_open
        self.regular_extra = regular_extra
        self.log = logger or logging.getLogger(__name__)
        self._cache: dict[date, tuple[date, list[Window]]] = {}

    def _windows(self, day: date, today: date) -> list[Window]:
        """`day`'s windows, fetched at most once per New York date `today`."""
        cached = self._cache.get(day)
        if cached is not None and cached[0] == today:
            return cached[1]
        windows = self._load(day)
        self._cache[day] = (today, windows)
        return windows

    def _load(self, day: date) -> list[Window]:
        if self.fetch_day is None:
            return windows_from_calendar(day, self.sessions, self.regular_extra)
        try:
            return windows_from_schwab(self.fetch_day(day), day, self.sessions, self.regular_extra)
        except Exception as error:  # any failure of the REST call or its body: the calendar is good enough
            self.log.warning(
                "Schwab market hours unavailable; using the NYSE calendar",
                extra={"day": day.isoformat(), "reason": str(error)[:300] or repr(error)},
            )
            return windows_from_calendar(day, self.sessions, self.regular_extra)

    def window_at_or_after(self, now: datetime) -> Window:
        """The window containing `now`, or else the next to open; MarketHoursError if none within LOOKAHEAD_DAYS."""
        if self.always_open:
            return Window(now, now + ALWAYS_OPEN_SPAN, self.sessions)
        today = now.astimezone(NEW_YORK).date()
        self._cache = {d: entry for d, entry in self._cache.items() if d >= today}
        for offset in range(LOOKAHEAD_DAYS + 1):
            for window in self._windows(today + timedelta(days=offset), today):
                if window.end > now:
                    return window
        sessions = "/".join(self.sessions)
        raise MarketHoursError(f"no {sessions} session within {LOOKAHEAD_DAYS} days of {now.isoformat()}")


def futures_windows(day: date) -> list[Window]:
    """CME Globex's session that ends on `day`: 18:00 New York the evening before to 17:00 (Sunday evening to
    Friday afternoon; the hour between two is the daily break); none on a weekend. CME's holiday schedules
    (early halts, a few closures) are not modelled: on such a day ingest is logged in and Schwab sends nothing."""
    if day.weekday() >= 5:
        return []
    return [Window(datetime.combine(day - timedelta(days=1), CME_OPEN, NEW_YORK),
                   datetime.combine(day, CME_CLOSE, NEW_YORK), ("futures",))]


class FuturesSchedule(MarketSchedule):
    """When futures trade: CME's sessions (`futures_windows`), from its weekly rule alone."""

    def __init__(self) -> None:
        super().__init__(None, ("futures",))

    def _load(self, day: date) -> list[Window]:
        return futures_windows(day)


class CombinedSchedule(Schedule):
    """Logged in whenever any of several markets is open: a deployment streaming stocks and futures follows the
    union of their windows, those that touch or overlap merged (CME's overnight session and the stocks' day)."""

    #: Windows looked at ahead, per schedule: a merged run of them lasts at most a trading week.
    AHEAD = 8

    def __init__(self, schedules: list[MarketSchedule]):
        self.schedules = schedules

    def window_at_or_after(self, now: datetime) -> Window:
        spans: dict[str, tuple[datetime, datetime]] = {}
        for index, schedule in enumerate(self.schedules):
            at = now
            for count in range(self.AHEAD):
                try:
                    window = schedule.window_at_or_after(at)
                except MarketHoursError:
                    break
                spans[f"{index}.{count}:{'/'.join(window.sessions)}"] = (window.start, window.end)
                at = window.end
        windows = [window for window in _merge(spans) if window.end > now]
        if not windows:
            raise MarketHoursError(f"no session of any market within {LOOKAHEAD_DAYS} days of {now.isoformat()}")
        first = windows[0]
        return Window(first.start, first.end, tuple(dict.fromkeys(s.split(":", 1)[1] for s in first.sessions)))
