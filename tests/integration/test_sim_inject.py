"""`POST /sim/inject`: the body goes out verbatim, next in order, to every logged-in streamer connection."""

from __future__ import annotations

import asyncio
import logging
import time
from pathlib import Path

import httpx
import msgspec

from common import config as config_module
from common.feed.schwab_client import make_client, make_stream_client
from common.feed.streamer import CheckedDecoder
from tests.helpers.simulator_process import control_headers, simulator

#: Not even JSON's idea of a frame: the simulator must not care.
HOSTILE = '{"data": [{"service": "LEVELONE_EQUITIES", "timestamp": 1, "content": [{"key": "\u00e9", "3": "NaN"}]}]}'


def test_empty_or_undecodable_bodies_are_refused_with_why():
    with simulator("--rate", "10") as url:
        headers = control_headers(url)
        empty = httpx.post(f"{url}/sim/inject", content=b"", headers=headers, timeout=10)
        assert empty.status_code == 400 and "empty body" in empty.json()["error"]
        latin = httpx.post(f"{url}/sim/inject", content="café".encode("latin-1"), headers=headers, timeout=10)
        assert latin.status_code == 400 and "not valid UTF-8" in latin.json()["error"]
        alone = httpx.post(f"{url}/sim/inject", content=HOSTILE.encode(), headers=headers, timeout=10)
        assert alone.json() == {"sent_to": 0}, "nobody logged in: sent nowhere"


def test_the_real_client_receives_the_injected_text_verbatim(tmp_path: Path):
    with simulator("--rate", "100", "--heartbeat", "0.2", log=tmp_path / "simulator.log") as url:
        config = config_module.load({"SIMULATOR_URL": url, "SCHWAB_TOKEN_PATH": str(tmp_path / "token.json")})
        received: list[bytes] = []

        def on_data(data: msgspec.Raw | list) -> None:
            received.append(bytes(data) if isinstance(data, msgspec.Raw) else msgspec.json.encode(data))

        async def stream_until_injected() -> None:
            stream = make_stream_client(make_client(config, asyncio=True))
            stream.set_json_decoder(CheckedDecoder(on_data, logging.getLogger("t"), lambda: None))
            await stream.login()
            await stream.level_one_equity_subs(["SPY"])
            answer = await asyncio.to_thread(httpx.post, f"{url}/sim/inject", content=HOSTILE.encode(),
                                             headers=control_headers(url), timeout=10)
            assert answer.json() == {"sent_to": 1}
            deadline = time.monotonic() + 10
            while time.monotonic() < deadline and not any(b'"\xc3\xa9"' in data for data in received):
                await stream.handle_message()
            await stream.logout()  # a clean close: an open socket holds asyncio.run's exit for seconds

        asyncio.run(stream_until_injected())
        injected = [data for data in received if b'"\xc3\xa9"' in data]
        assert injected == [HOSTILE.encode()[len('{"data": '):-1]], "the frame's data, byte for byte"
        assert httpx.get(f"{url}/sim/report").json()["counts"]["injected"] == 1
