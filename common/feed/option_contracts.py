"""Which option contracts ingest streams: the union of the options actor's wishes, reached by differences.

The options actor sends, per underlying, the full set of contracts it wants
(`OptionSubscription`, state, not a delta, repeated). Ingest streams their
union and moves towards it by difference only: one UNSUBS of what left it,
one ADD (SUBS on an empty stream) of what entered it; a contract that stays
is never asked for again, so it gets no second full snapshot. More than
Schwab's per-service limit is cut to the limit, and a set Schwab refuses
over its symbol limit (code 19) is not asked for again until a wish changes:
either way the rest goes on streaming.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from schwab.streaming import StreamClient, UnexpectedResponseCode

from common.feed.services.levelone_options import SERVICE as OPTIONS
from common.feed.streamer import SYMBOL_LIMIT, response_code, within
from common.transport.messages import Envelope, OptionSubscription


class OptionContracts:
    """The union of every underlying's wanted contracts, and how to get there.

    `changes` is asked every CONTROL_EVERY; with 200 underlyings the union is
    thousands of contracts, so it is rebuilt only when a wish changes and
    compared only when the wish or the streaming set (replaced, never
    mutated in place) has moved since the last answer of nothing to do.
    """

    def __init__(self, max_keys: int) -> None:
        self.max_keys = max_keys
        self.wanted: dict[str, frozenset[str]] = {}
        self.streaming: frozenset[str] = frozenset()
        #: A wanted set Schwab refused (code 19): not asked for again until the wish changes.
        self.refused: frozenset[str] | None = None
        self._target: frozenset[str] | None = frozenset()
        self._settled: tuple[frozenset[str], frozenset[str] | None] | None = None

    def want(self, subscription: OptionSubscription) -> None:
        contracts = frozenset(subscription.contracts)
        if self.wanted.get(subscription.underlying) != contracts:
            self.wanted[subscription.underlying] = contracts
            self._target = None

    def target(self) -> frozenset[str]:
        if self._target is None:
            self._target = frozenset().union(*self.wanted.values())
        return self._target

    def changes(self) -> tuple[list[str], list[str]]:
        """(to add, to remove) to move the stream to the wanted set."""
        target = self.target()
        if self._settled is not None and self._settled[0] is target and self._settled[1] is self.streaming:
            return [], []
        if target == self.refused:
            return [], []
        to_add, to_remove = sorted(target - self.streaming), sorted(self.streaming - target)
        if not to_add and not to_remove:
            self._settled = (target, self.streaming)
        return to_add, to_remove

    def restart(self) -> None:
        """A new connection streams nothing yet, and Schwab may take what it refused on the last one."""
        self.streaming = frozenset()
        self.refused = None


def take_wishes(receive: Callable[[], Any], contracts: OptionContracts) -> None:
    """Every wish waiting on the control channel (`receive` returns None when none is), into `contracts`."""
    while (frame := receive()) is not None:
        if isinstance(frame, Envelope):
            for subscription in frame.records:
                contracts.want(subscription)


async def apply_option_changes(stream: StreamClient, contracts: OptionContracts, logger: logging.Logger,
                               timeout: float) -> None:
    """UNSUBS what left the wanted set and ADD what entered it; contracts that stay are not touched."""
    to_add, to_remove = contracts.changes()
    if not to_add and not to_remove:
        return
    excess = len(contracts.streaming) - len(to_remove) + len(to_add) - contracts.max_keys
    if excess > 0:
        logger.error("option contracts over Schwab's per-service limit; asking for fewer",
                     extra={"limit": contracts.max_keys, "over_by": excess})
        to_add = to_add[:len(to_add) - excess]
        contracts.refused = contracts.target()  # asked once; again only when the wish changes
    if to_remove:
        await within(timeout, "LEVELONE_OPTIONS UNSUBS", stream.level_one_option_unsubs(to_remove))
        contracts.streaming -= set(to_remove)
    if to_add:
        command = "add" if contracts.streaming else "subs"
        try:
            await within(timeout, f"{OPTIONS.name} {command.upper()}", OPTIONS.subscription(stream, to_add, command))
        except UnexpectedResponseCode as error:
            code, msg = response_code(error)
            if code != SYMBOL_LIMIT:
                raise
            contracts.refused = contracts.target()
            logger.error("Schwab refused option contracts over its symbol limit (code 19); streaming the rest",
                         extra={"refused": len(to_add), "streaming": len(contracts.streaming), "reason": msg})
            return
        contracts.streaming |= set(to_add)
    logger.info("option contracts changed",
                extra={"added": len(to_add), "removed": len(to_remove), "streaming": len(contracts.streaming)})
