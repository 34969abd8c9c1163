"""What every service's merge (`common/feed/services/`) shares: how an update is refused, and its New York day.

Level-one services send a full snapshot of a key first and then only the
fields that changed, so every record is built from the key's merged state,
kept typed and updated in place, never from one update alone. Reset the
books whenever the connection is replaced: a new connection starts from
fresh snapshots, and no stale field may leak into a record.

An update that cannot become an honest record raises `Incomplete`, naming the
reason it is counted by. A time no calendar holds (past year 9999) cannot be
given a New York day: `NewYorkDay` refuses it as `time_out_of_range`, an
Incomplete like the others, never an error that escapes (the edge refuses
such frames before; this is the merge's own guard).
"""

from __future__ import annotations

from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

NEW_YORK = ZoneInfo("America/New_York")
#: CME's trading day opens at 18:00 New York for the next day's date: six hours ahead of the calendar.
CME_DAY_AHEAD = timedelta(hours=6)


class Incomplete(ValueError):
    """An update that cannot become an honest record; `reason` is the name it is counted by."""

    def __init__(self, reason: str, detail: str):
        super().__init__(detail)
        self.reason = reason


class NewYorkDay:
    """The New York trading day of an epoch-ms time, zoneinfo consulted once per day, not per update.

    A stock's trading day is the calendar day; `ahead` is how far another's runs ahead of it: CME's, which opens
    at 18:00 for the next day's date, is 6 hours ahead (`CME_DAY_AHEAD`)."""

    def __init__(self, ahead: timedelta = timedelta(0)) -> None:
        self.ahead = ahead
        self.start_ms = self.end_ms = 0
        self.day = 0

    def __call__(self, ms: int) -> int:
        """`ms`'s day, as a proleptic ordinal; Incomplete (`time_out_of_range`) for a time no calendar holds."""
        if not self.start_ms <= ms < self.end_ms:
            try:
                local = (datetime.fromtimestamp(ms / 1000, NEW_YORK) + self.ahead).date()
                midnight = datetime(local.year, local.month, local.day, tzinfo=NEW_YORK)
                start_ms = int((midnight - self.ahead).timestamp() * 1000)
                end_ms = int((midnight + timedelta(days=1) - self.ahead).timestamp() * 1000)
            except (OverflowError, OSError, ValueError):
                raise Incomplete("time_out_of_range", f"time {ms} ms after 1970 is in no calendar") from None
            self.start_ms, self.end_ms, self.day = start_ms, end_ms, local.toordinal()
        return self.day
