"""A schwab-py JSON decoder that keeps every message the client reads, and what ingest would make of them."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Awaitable, Callable

import msgspec
from schwab.contrib.util import StreamJsonDecoder
from schwab.streaming import StreamClient

from common.config import Config
from common.feed import edge
from common.feed.schwab_client import make_client, make_stream_client
from common.feed.services import SERVICES


class Recorder(StreamJsonDecoder):
    """Keeps every message the client reads, heartbeats included (schwab-py drops those)."""

    def __init__(self) -> None:
        self.messages: list[dict] = []

    def decode_json_string(self, raw: str) -> dict:
        message = json.loads(raw)
        self.messages.append(message)
        return message

    def heartbeats(self) -> int:
        return sum("heartbeat" in n for m in self.messages for n in m.get("notify", []))



    def entries(self, service: str | None = None) -> list[dict]:
        """Every `data` entry read (of `service`), in order."""
        return [entry for message in self.messages for entry in message.get("data", ())
                if service is None or entry["service"] == service]

    def items(self, service: str) -> int:
        return sum(len(entry["content"]) for entry in self.entries(service))


def record_session(config: Config, subscribe: Callable[[StreamClient], Awaitable[None]],
                   enough: Callable[[Recorder], bool], timeout: float = 10.0) -> Recorder:
    """Log the real client in to `config`'s Schwab (the simulator), `subscribe`, read until `enough`, log out."""
    recorder = Recorder()

    async def session() -> None:
        client = make_client(config, asyncio=True)
        stream = make_stream_client(client)
        stream.set_json_decoder(recorder)
        await stream.login()
        await subscribe(stream)
        deadline = time.monotonic() + timeout
        while not enough(recorder):
            assert time.monotonic() < deadline, "timed out waiting for the simulator"
            await asyncio.wait_for(stream.handle_message(), 5)
        await stream.logout()
        await client.close_async_session()

    asyncio.run(session())
    return recorder


def ingest_records(entries: list[dict]) -> list[msgspec.Struct]:
    """What ingest's edge and merge make of `entries` (a fresh book per service); every item must pass."""
    records = []
    for name, service in SERVICES.items():
        book = service.book()
        decoded = edge.decode(msgspec.Raw(json.dumps([e for e in entries if e["service"] == name]).encode()))
        assert decoded.rejections == [], decoded.rejections
        records += [record for entry in decoded.entries for update in entry.updates
                    for record in book.merge(update, entry.frame_ms, 1)]
    return records
