"""The Schwab streaming services this service streams, each declared once (`common/feed/service.py` says what a
declaration holds): the edge decoder, the merge, the subscriptions and the simulator's protocol derive from
`SERVICES`. Adding a service is a module here and its line below."""

from __future__ import annotations

from common.feed.service import Service
from common.feed.services import chart_equity, chart_futures, levelone_equities, levelone_futures, levelone_options

SERVICES: dict[str, Service] = {service.name: service for service in (
    levelone_equities.SERVICE, levelone_options.SERVICE, chart_equity.SERVICE, levelone_futures.SERVICE,
    chart_futures.SERVICE)}
#: The service of each item type the edge decodes.
BY_ITEM: dict[type, Service] = {service.item: service for service in SERVICES.values()}
