"""Minutes the stream missed: found between two stream bars, fetched from price history, published as repaired."""

import asyncio
import logging

import httpx
import msgspec

from common.feed.bar_repair import MAX_AGE_MS, BarGap, BarGaps, BarRepair, PendingGaps, newest_stream_bars
from common.observe.stats import ActorStats
from common.transport.journal import JournalWriter
from common.transport.messages import Envelope, MinuteBar, encode
from tests.helpers.recordings import KeptFrames

T, MINUTE = 1_764_000_000_000, 60_000


def bar(minute: int, symbol: str = "SPY", source: str = "stream") -> MinuteBar:
    return MinuteBar(symbol, T + minute * MINUTE, 417.1, 417.4, 417.0, 417.25, 100.0, minute, 1, source)


def test_a_stream_bar_more_than_a_bar_after_the_last_opens_a_gap_of_the_minutes_between():
    gaps = BarGaps(MINUTE, newest={"SPY": T})
    assert gaps.seen(bar(1)) is None, "the next minute: nothing missed"
    assert gaps.seen(bar(1)) is None and gaps.seen(bar(0)) is None, "a revision or replay of a bar seen"
    gap = gaps.seen(bar(5))
    assert gap == BarGap("SPY", T + MINUTE, T + 5 * MINUTE) and gap.minutes(MINUTE) == 3
    assert gaps.seen(bar(9, source="repaired")) is None and gaps.newest["SPY"] == T + 5 * MINUTE, \
        "a repaired bar is not the stream's"
    assert gaps.seen(bar(7, symbol="QQQ")) is None, "a ticker's first bar since start: nothing known before it"


def test_the_newest_stream_bar_per_ticker_is_read_from_ingests_journal(tmp_path):
    writer = JournalWriter(tmp_path, "ingest", 1)
    for seq, records in enumerate(([bar(1), bar(2, "QQQ")], [bar(3)], [bar(9, source="repaired")]), start=1):
        writer.append(encode(Envelope("d/ingest/bar", 1, seq, 0, records)))
    writer.append(encode(Envelope("d/ingest/trade", 1, 1, 0, [])))
    writer.append(encode(Envelope("other/ingest/bar", 1, 1, 0, [bar(20)])))
    writer.close()
    assert newest_stream_bars(tmp_path, "d") == {"SPY": T + 3 * MINUTE, "QQQ": T + 2 * MINUTE}


class History:
    """schwab-py's AsyncClient as far as the repair uses it: answers from a script, keeps what was asked."""

    def __init__(self, *answers: httpx.Response | Exception):
        self.answers, self.asked = list(answers), []

    async def get_price_history_every_minute(self, symbol, *, start_datetime, end_datetime, need_extended_hours_data):
        self.asked.append((symbol, start_datetime.timestamp() * 1000, end_datetime.timestamp() * 1000,
                           need_extended_hours_data))
        answer = self.answers.pop(0)
        if isinstance(answer, Exception):
            raise answer
        return answer


def history(*minutes: int, **changes) -> httpx.Response:
    candles = [{"open": 417.1, "high": 417.4, "low": 417.0, "close": 417.25, "volume": 100,
                "datetime": T + minute * MINUTE, **changes} for minute in minutes]
    return httpx.Response(200, content=msgspec.json.encode({"symbol": "SPY", "candles": candles}),
                          request=httpx.Request("GET", "https://api.schwabapi.com/marketdata/v1/pricehistory"))


def repairer(client: History, now_ms: int = T + 10 * MINUTE, kept: PendingGaps | None = None
             ) -> tuple[BarRepair, list]:
    sent = KeptFrames()
    repair = BarRepair(BarGaps(MINUTE, {"SPY": T}), lambda: client, sent.send,
                       ActorStats("ingest", 1.0), logging.getLogger("repair-test"), extended=False,
                       now_ms=lambda: now_ms, kept=kept)
    return repair, sent.frames


def once(repair: BarRepair) -> None:
    """One turn of the repair loop: it stops as soon as it has looked at the queue once."""
    turns = iter((False, True))
    asyncio.run(repair.run(lambda: next(turns)))


def test_the_window_is_asked_of_the_price_history_and_its_bars_published_as_repaired():
    client = History(history(1, 2, 3))
    repair, sent = repairer(client)
    repair.seen(bar(5))
    once(repair)
    assert client.asked == [("SPY", T + 1, T + 5 * MINUTE - 1, False)], "strictly between the two stream bars"
    ((kind, bars),) = sent
    assert kind == "bar" and [b.start_ms for b in bars] == [T + MINUTE * k for k in (1, 2, 3)]
    assert {b.source for b in bars} == {"repaired"} and {b.chart_sequence for b in bars} == {-1}
    assert (repair.stats.bars_missing, repair.stats.bars_repaired, len(repair.pending)) == (3, 3, 0), \
        "minutes 1-4 in the window; the history has no minute 4 (nothing traded): it missed nothing, nothing is made up"


def test_candles_no_market_has_are_refused_and_counted_never_published():
    repair, sent = repairer(History(history(1, 2, low=0.0)))
    repair.seen(bar(3))
    once(repair)
    assert sent == [] and repair.stats.rejections == {"price_invalid": 2} and not repair.pending
    assert (repair.stats.bars_missing, repair.stats.bars_repaired) == (2, 0), "missed, and refused"


def test_a_failed_fetch_keeps_the_gap_and_is_tried_again_with_a_fresh_client():
    client = History(httpx.ConnectError("refused"), history(1))
    repair, sent = repairer(client)
    repair.seen(bar(2))
    once(repair)
    assert (sent, len(repair.pending), repair.client) == ([], 1, None)
    assert repair.retry_at > 0, "not before its backoff"
    repair.retry_at = 0.0
    once(repair)
    assert [b.start_ms for _, bars in sent for b in bars] == [T + MINUTE] and not repair.pending


def test_a_gap_older_than_schwab_keeps_minutes_is_left_to_backfill():
    repair, _ = repairer(History(), now_ms=T + MAX_AGE_MS + 10 * MINUTE)
    repair.seen(bar(3))
    assert not repair.pending and repair.stats.bars_missing == 0, "how many it missed, only a fetch could say"


def test_a_gap_not_yet_fetched_when_ingest_stops_is_repaired_by_the_next_run(tmp_path):
    kept = PendingGaps(tmp_path / "bar_gaps.json", logging.getLogger("repair-test"))
    first, _ = repairer(History(httpx.ConnectError("refused")), kept=kept)
    first.seen(bar(3))
    once(first)
    assert len(first.pending) == 1, "backing off when ingest stops"
    client = History(history(1, 2))
    second, sent = repairer(client, kept=kept)
    assert list(second.pending) == [BarGap("SPY", T, T + 3 * MINUTE)], "read back"
    once(second)
    assert [b.start_ms for _, bars in sent for b in bars] == [T + MINUTE, T + 2 * MINUTE]
    assert kept.load() == [] and not (tmp_path / "bar_gaps.json.tmp").exists(), "done, and said so"


def test_an_unreadable_file_of_gaps_is_set_aside_and_said(tmp_path, caplog):
    path = tmp_path / "bar_gaps.json"
    path.write_text('[{"symbol": "SPY", "after_ms": "soon"}]')
    with caplog.at_level(logging.ERROR):
        assert PendingGaps(path, logging.getLogger("repair-test")).load() == []
    assert not path.exists() and (tmp_path / "bar_gaps.json.unreadable").exists()
    assert "unreadable" in caplog.text


def test_gaps_that_cannot_be_saved_stay_queued(tmp_path, caplog):
    repair, _ = repairer(History(), kept=PendingGaps(tmp_path / "full" / "bar_gaps.json", logging.getLogger("t")))
    (tmp_path / "full").write_text("a file where the folder should be")
    with caplog.at_level(logging.WARNING):
        repair.seen(bar(3))
    assert len(repair.pending) == 1 and "not saved" in caplog.text
