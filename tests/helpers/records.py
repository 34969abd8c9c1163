"""What a LEVELONE_EQUITIES merge yields, as the pair tests compare: its trade and its quote, each or None."""

from __future__ import annotations

from collections.abc import Iterable

import msgspec

from common.transport.messages import EquityQuote, EquityTrade


def trade_and_quote(records: Iterable[msgspec.Struct]) -> tuple[EquityTrade | None, EquityQuote | None]:
    made = {type(record): record for record in records}
    return made.get(EquityTrade), made.get(EquityQuote)
