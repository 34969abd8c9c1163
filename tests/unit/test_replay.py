"""Recording what ingest receives and replaying it through the same decoder (issue 11, item 5).

A recording replayed makes the records feeding it live made: the captured
Schwab frames (May 2024, so also a recording far older than the edge's
14-day window, which counts from each frame's own timestamp), frames only the
lenient parser reads, and, end to end, a simulator run replayed into a fresh
pipeline stores each recorded trade once.
"""

from __future__ import annotations

import asyncio
import json
import logging
import math
import time
from pathlib import Path

import msgspec
import pytest

from common.feed import replay
from common.feed.replay import Recorder, play
from common.feed.streamer import CheckedDecoder
from tests.helpers.recordings import KeptFrames, frame_publisher, replayed
from tests.helpers.schwab_frames import raw_frames

KINDS = ("trade", "quote", "bar", "option")
log = logging.getLogger("test.replay")


def live(messages: list[str], recording: Path | None) -> KeptFrames:
    """What ingest sends for Schwab messages as the websocket hands them over, recording them when asked."""

    async def session() -> KeptFrames:
        kept = KeptFrames()
        recorder = Recorder(recording, pytest.fail) if recording else None
        frames = frame_publisher(kept, recorder)
        decoder = CheckedDecoder(frames.on_data, log, pytest.fail)
        for message in messages:
            decoder.decode_json_string(message)
        frames.flush()
        if recorder:
            recorder.close()
        return kept

    return asyncio.run(session())


def unstamped(kept: KeptFrames) -> dict[str, list]:
    """Every record by kind, without the moment it was received (a replay receives it later)."""
    return {kind: [msgspec.structs.replace(record, received_ns=0) for record in kept.records(kind)] for kind in KINDS}


def schwab_messages() -> list[str]:
    return [json.dumps({"data": data}) for data in raw_frames().values()]


def test_captured_schwab_frames_replayed_make_what_they_made_live(tmp_path):
    recording = tmp_path / "schwab.jsonl"
    messages = schwab_messages()
    original = live(messages, recording)
    kept, played, refused = asyncio.run(replayed(recording))
    assert recording.read_bytes().splitlines() == [json.dumps(data).encode() for data in raw_frames().values()]
    assert (played.lines, played.torn) == (len(messages), 0)
    assert refused == {}, "frames from 2024 pass: item times are checked against their own frame's"
    assert unstamped(kept) == unstamped(original)
    assert all(unstamped(original)[kind] for kind in ("quote", "bar", "option")), "the capture carries each kind"
    assert len(kept.frames) == len({kind for kind, _ in kept.frames}), "one frame per kind: coalesced alike"


def test_a_frame_only_the_lenient_parser_reads_is_recorded_with_its_nan_and_replayed_alike(tmp_path):
    data = raw_frames()["LEVELONE_EQUITIES"]
    data[0]["content"][0]["1"] = math.nan  # one bid Schwab could not compute: that item refused, the rest kept
    message = json.dumps({"data": data})
    recording = tmp_path / "nan.jsonl"

    async def both() -> tuple[KeptFrames, KeptFrames, dict, dict]:
        kept_live, kept_replayed = KeptFrames(), KeptFrames()
        recorder = Recorder(recording, pytest.fail)
        frames = frame_publisher(kept_live, recorder)
        CheckedDecoder(frames.on_data, log, pytest.fail).decode_json_string(message)
        frames.flush()
        recorder.close()
        again = frame_publisher(kept_replayed)
        await play(recording, again.on_data, lambda: None, lambda: False)
        again.flush()
        return kept_live, kept_replayed, frames.stats.rejections, again.stats.rejections

    kept_live, kept_replayed, refused_live, refused_replayed = asyncio.run(both())
    assert b"NaN" in recording.read_bytes()
    assert refused_live == refused_replayed == {"price_not_finite": 1}
    assert unstamped(kept_replayed) == unstamped(kept_live) and kept_live.records("quote")


def test_a_torn_last_line_is_skipped_and_trimmed_before_recording_goes_on(tmp_path):
    line = json.dumps(raw_frames()["CHART_EQUITY"]).encode()
    recording = tmp_path / "torn.jsonl"
    recording.write_bytes(line + b"\n\n" + line[:40])  # killed mid-line
    kept, played, _ = asyncio.run(replayed(recording))
    assert (played.lines, played.torn) == (1, 1) and kept.records("bar")
    recorder = Recorder(recording, pytest.fail)
    recorder.write(msgspec.Raw(line))
    recorder.close()
    assert recording.read_bytes() == line + b"\n\n" + line + b"\n"


def test_a_full_disk_stops_the_recording_once_and_never_the_stream(monkeypatch):
    monkeypatch.setattr(replay, "FLUSH_EVERY", 0.0)  # every write reaches the device at once
    failures: list[OSError] = []

    async def session() -> KeptFrames:
        kept = KeptFrames()
        recorder = Recorder(Path("/dev/full"), failures.append)
        frames = frame_publisher(kept, recorder)
        decoder = CheckedDecoder(frames.on_data, log, pytest.fail)
        for message in schwab_messages():
            decoder.decode_json_string(message)
        frames.flush()
        recorder.close()
        return kept

    kept = asyncio.run(session())
    assert [error.errno for error in failures] == [28]  # ENOSPC, reported once
    assert unstamped(kept) == unstamped(live(schwab_messages(), None))


def test_a_replay_gives_the_loop_a_turn_regularly_and_stops_when_asked(tmp_path, monkeypatch):
    monkeypatch.setattr(replay, "YIELD_EVERY", 0.0)
    recording = tmp_path / "many.jsonl"
    recording.write_text("[]\n" * 10)
    handed: list[object] = []
    turns: list[float] = []

    async def session() -> replay.Played:
        ticking = asyncio.get_running_loop().call_soon(lambda: turns.append(-1.0))  # runs only if play yields
        played = await play(recording, handed.append, lambda: turns.append(time.monotonic()), lambda: len(turns) >= 4)
        ticking.cancel()
        return played

    played = asyncio.run(session())
    assert turns[0] == -1.0 and len(turns) == 4
    assert played.lines == len(handed) == 3 and all(isinstance(data, msgspec.Raw) for data in handed)


def test_a_missing_recording_is_refused_by_name(tmp_path):
    with pytest.raises(replay.RecordingError, match="cannot replay .*absent.jsonl"):
        asyncio.run(play(tmp_path / "absent.jsonl", pytest.fail, pytest.fail, lambda: False))


# ---- end to end --------------------------------------------------------------------------------------------------


