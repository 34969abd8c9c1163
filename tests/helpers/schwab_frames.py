"""The captured Schwab frames (May 2024, from schwab-py's test suite), raw and as schwab-py's handlers see them.

`data/schwab_frames_2024.json` is a copy of the project's shared capture, kept
here so the suite reads nothing outside `tests/`.
"""

from __future__ import annotations

import json
from pathlib import Path

import msgspec

from common.feed import edge
from common.feed.services import SERVICES

FIXTURES = Path(__file__).resolve().parents[1] / "data" / "schwab_frames_2024.json"

FIELD_ENUMS = {name: service.schwab_fields for name, service in SERVICES.items()}


def raw_frames() -> dict[str, list[dict]]:
    return {service: body["data"] for service, body in json.loads(FIXTURES.read_text()).items()}


def captured(service: str) -> list:
    """Every content item of `service` in the capture, decoded and checked at the edge (none is refused)."""
    decoded = edge.decode(msgspec.Raw(json.dumps(raw_frames()[service]).encode()))
    assert not decoded.rejections, decoded.rejections
    return [update for entry in decoded.entries for update in entry.updates]
