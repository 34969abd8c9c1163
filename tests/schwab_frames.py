"""The captured Schwab frames in ../shared, relabelled exactly as schwab-py's handlers see them."""

from __future__ import annotations

import json
from pathlib import Path

from schwab.streaming import StreamClient, _Handler

FIXTURES = Path(__file__).resolve().parents[2] / "shared" / "schwab" / "frames_2024.json"

FIELD_ENUMS = {
    "LEVELONE_EQUITIES": StreamClient.LevelOneEquityFields,
    "LEVELONE_OPTIONS": StreamClient.LevelOneOptionFields,
    "CHART_EQUITY": StreamClient.ChartEquityFields,
}


def raw_frames() -> dict[str, list[dict]]:
    return {service: body["data"] for service, body in json.loads(FIXTURES.read_text()).items()}


def relabel(service: str, data: dict) -> dict:
    """What a handler registered with schwab-py receives for one `data` entry."""
    return _Handler(lambda message: message, FIELD_ENUMS[service]).label_message(data)


def labelled_items(service: str) -> list[dict]:
    return [item for data in raw_frames()[service] for item in relabel(service, data)["content"]]
