"""A schwab-py JSON decoder that keeps every message the client reads."""

from __future__ import annotations

import json

from schwab.contrib.util import StreamJsonDecoder


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


