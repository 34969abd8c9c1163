"""An `Actor` in the test's own process, and a publisher on a thread beside it, for tests of the actor frame.

An Actor takes over process-wide state as a supervised process should: the
root logger, the excepthooks, SIGTERM/SIGINT and the signal wake-up fd.
`ActorEnvironment` gives it its settings through the environment and puts
all of that back afterwards, and keeps the JSON log lines it wrote.
"""

from __future__ import annotations

import io
import json
import logging
import signal
import sys
import threading
from collections.abc import Callable, Iterable
from pathlib import Path

import pytest

from common.actor import Actor
from common.config import Config
from common.streams import journaled_kinds
from common.transport.bus import Publisher
from common.transport.tickerplant import Tickerplant

#: How long a test publisher waits for its subscribers before sending anyway (and the test then fails).
SUBSCRIBER_WAIT = 10.0


class ActorEnvironment:
    def __init__(self, root: Path, monkeypatch: pytest.MonkeyPatch):
        settings = {"RUN_DIR": root / "run", "LOG_DIR": root / "log", "DATA_DIR": root / "data",
                    "DEPLOYMENT": "test", "HEARTBEAT_INTERVAL": "100ms", "STATS_INTERVAL": "200ms"}
        for name, value in settings.items():
            monkeypatch.setenv(name, str(value))
        self.lines = io.StringIO()
        logger = logging.getLogger()
        self._saved = (logger.handlers[:], logger.level, sys.excepthook, threading.excepthook,
                       signal.getsignal(signal.SIGTERM), signal.getsignal(signal.SIGINT))

    def capture(self) -> None:
        """Route the actor's JSON log lines here (log.setup sent them to stdout)."""
        for handler in logging.getLogger().handlers:
            if isinstance(handler, logging.StreamHandler):
                handler.setStream(self.lines)

    def log(self) -> list[dict]:
        return [json.loads(line) for line in self.lines.getvalue().splitlines()]

    def restore(self) -> None:
        handlers, level, excepthook, thread_hook, term, interrupt = self._saved
        logger = logging.getLogger()
        logger.handlers[:] = handlers
        logger.setLevel(level)
        sys.excepthook, threading.excepthook = excepthook, thread_hook
        signal.signal(signal.SIGTERM, term)
        signal.signal(signal.SIGINT, interrupt)
        signal.set_wakeup_fd(-1)


def in_process_actor(name: str, environment: ActorEnvironment) -> Actor:
    actor = Actor(name)
    environment.capture()
    return actor


class PublisherThread(threading.Thread):
    """A publisher named `name` on its own thread (a ZeroMQ socket belongs to one): it waits for `subscribers`,
    hands itself to `send`, then closes with its final heartbeat. `epoch` is its epoch once it has started."""

    def __init__(self, config: Config, name: str, subscribers: Iterable[str], send: Callable[[Publisher], object],
                 tickerplant: bool):
        super().__init__(daemon=True)
        self.config, self.name_, self.subscribers, self.send, self.tickerplant = \
            config, name, list(subscribers), send, tickerplant
        self.epoch = 0
        self.ready = threading.Event()

    def run(self) -> None:
        publisher = Tickerplant(self.config, self.name_, journaled_kinds(self.config.opted_in)) if self.tickerplant \
            else Publisher(self.config, self.name_)
        self.epoch = publisher.epoch
        self.ready.set()
        try:
            missing = publisher.wait_for_subscribers(self.subscribers, SUBSCRIBER_WAIT)
            assert not missing, f"{missing} never subscribed"
            self.send(publisher)
        finally:
            publisher.close()


def publish_in_thread(config: Config, name: str, subscribers: Iterable[str], send: Callable[[Publisher], object],
                      tickerplant: bool = False) -> PublisherThread:
    thread = PublisherThread(config, name, subscribers, send, tickerplant)
    thread.start()
    thread.ready.wait(SUBSCRIBER_WAIT)
    return thread
