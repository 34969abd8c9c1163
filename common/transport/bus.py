"""ZeroMQ PUB/SUB with sequence numbers and heartbeats: sockets, topics and numbers only.

Each actor binds one XPUB socket at `Config.endpoint(actor)`; subscribers
connect to the publishers they need. A frame is two parts, `[topic, payload]`,
where topic is the stream, `{deployment}/{publisher}/{kind}`
(`common/transport/topics.py`), and the payload an msgpack `Envelope` of that
stream's records. A publisher is handed records, whose type's tag is the
kind; a subscriber names the record type it wants. Heartbeats travel on
`{deployment}/{publisher}/heartbeat`: the first one `heartbeat_interval`
after the last frame, then each twice as long after the one before, up to
QUIET_BACKOFF intervals, until a frame goes out again. The first says at
once what was sent last; the rest only say the publisher is still there,
which an idle market does not need every second.
An actor's own counter samples (`metric`) do not start the heartbeats afresh:
an idle actor sends one every few seconds, and each carries its last seqs.
Journaling what is sent is the tickerplant's job (`common/transport/tickerplant.py`).

Overflow policy, stated once for every socket built here:
- Publisher (XPUB, SNDHWM = `bus_hwm` frames per subscriber): when one
  subscriber's queue is full, frames for *that* subscriber are dropped and the
  publisher never blocks; the market-data socket upstream must never stall.
- Subscriber (SUB, RCVHWM = `bus_hwm` frames): when full, ZeroMQ stops reading
  from the publisher, whose own high-water mark then drops.
- Either way a drop is never silent: the subscriber sees the seq jump (or a
  heartbeat whose last seq it has not seen) and counts a gap; the rule is
  `common/transport/sequence.py`'s.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterable, Sequence

import zmq

from common.config import Config
from common.identity import claim_epoch, keep_deployment
from common.transport.messages import (
    Envelope,
    Heartbeat,
    MetricSample,
    Record,
    decode_envelope,
    decode_heartbeat,
    encode,
)
from common.transport.sequence import Gap, Sequencer, StreamPositions
from common.transport.topics import kind_of, stream, tag

HEARTBEAT = "heartbeat"
#: The kind of an actor's counter samples: sending them is not activity.
COUNTERS = tag(MetricSample)
#: An idle publisher's heartbeats space out to at most this many heartbeat intervals.
QUIET_BACKOFF = 8


def presence_topic(deployment: str, publisher: str, subscriber: str) -> str:
    """A topic nothing is sent on: subscribing to it tells `publisher` who is listening."""
    return f"{deployment}/{publisher}/@{subscriber}"


class Publisher:
    """One actor's outbound bus socket: numbered frames and idle heartbeats."""

    #: Nothing journaled here; a Tickerplant's journal says otherwise.
    journal_bytes = journal_errors = 0

    def __init__(self, config: Config, name: str, context: zmq.Context | None = None,
                 epoch_clock: Callable[[], int] = time.time_ns):
        """`epoch_clock`: the wall clock (ns) this run's epoch starts from; what keys its frames, the deployment's
        name and the epoch, is kept on disk before the first frame (`common/identity.py`)."""
        self.name = name
        self.deployment = config.deployment
        keep_deployment(config.data_dir, config.deployment)
        self.sequencer = Sequencer(epoch=claim_epoch(config.data_dir, name, epoch_clock))
        self.heartbeat_interval = config.heartbeat_interval
        self._last_send = 0.0
        #: Heartbeat intervals the next idle heartbeat waits: 1 after a frame, doubling up to QUIET_BACKOFF.
        self._quiet = 1
        self._config = config
        self.subscriptions: set[bytes] = set()
        self._context = context or zmq.Context.instance()
        self.socket = self._context.socket(zmq.XPUB)
        self.socket.setsockopt(zmq.SNDHWM, config.bus_hwm)
        self.socket.setsockopt(zmq.XPUB_VERBOSE, 1)
        self.socket.setsockopt(zmq.LINGER, 2000)
        self.socket.bind(config.endpoint(name))

    @property
    def epoch(self) -> int:
        return self.sequencer.epoch

    def frame(self, kind: str, records: Sequence[Record]) -> tuple[str, int, bytes]:
        """The next frame of `kind`: (its stream, its seq, the encoded Envelope)."""
        name = stream(self.deployment, self.name, kind)
        seq = self.sequencer.next(name)
        return name, seq, encode(Envelope(name, self.epoch, seq, time.time_ns(), list(records)))

    def emit(self, name: str, payload: bytes, kind: str) -> None:
        """Put an encoded frame on the socket (copied: small frames are cheaper so than zero-copy)."""
        self.socket.send_multipart((name.encode(), payload))
        if kind != COUNTERS:
            self._last_send = time.monotonic()
            self._quiet = 1

    def send(self, records: Sequence[Record]) -> int:
        """Publish one frame of `records`, all of one type, whose tag is the frame's kind (`topics.kind_of`);
        returns its seq."""
        kind = kind_of(records)
        name, seq, payload = self.frame(kind, records)
        self.emit(name, payload, kind)
        return seq

    def heartbeat(self, final: bool = False) -> None:
        beat = Heartbeat(self.name, self.epoch, time.time_ns(), dict(self.sequencer.last_seqs), final)
        self.socket.send_multipart((stream(self.deployment, self.name, HEARTBEAT).encode(), encode(beat)))
        self._last_send = time.monotonic()

    @property
    def heartbeat_due(self) -> float:
        """When (time.monotonic()) an idle publisher owes its next heartbeat."""
        return self._last_send + self.heartbeat_interval * self._quiet

    def tick(self) -> bool:
        """Call often: records new subscriptions and heartbeats when idle; True when it heartbeat."""
        self.poll_subscriptions()
        if time.monotonic() >= self.heartbeat_due:
            self.heartbeat()
            self._quiet = min(2 * self._quiet, QUIET_BACKOFF)
            return True
        return False

    def poll_subscriptions(self) -> None:
        while self.socket.get(zmq.EVENTS) & zmq.POLLIN:  # asking is cheaper than an Again raised per call
            try:
                message = self.socket.recv(zmq.NOBLOCK)
            except zmq.Again:
                return
            if message[:1] == b"\x01":
                self.subscriptions.add(message[1:])

    def has_subscriber(self, name: str) -> bool:
        return presence_topic(self.deployment, self.name, name).encode() in self.subscriptions

    def wait_for_subscribers(self, names: Iterable[str], timeout: float) -> list[str]:
        """Wait until each named consumer has subscribed; returns those still missing.

        PUB/SUB sends nothing to a subscriber before its subscription arrives,
        so a publisher waits here for the consumers it must not outrun
        (bounded, so a missing consumer cannot stall it forever).
        """
        pending = list(names)
        deadline = time.monotonic() + timeout
        while True:
            self.poll_subscriptions()
            pending = [name for name in pending if not self.has_subscriber(name)]
            if not pending or time.monotonic() >= deadline:
                return pending
            self.socket.poll(50, zmq.POLLIN)

    def close(self) -> None:
        """A final heartbeat tells subscribers the last seq of every stream."""
        self.heartbeat(final=True)
        self.socket.close()


class Subscriber:
    """One actor's inbound bus socket, with gap detection on every stream."""

    def __init__(self, config: Config, name: str, context: zmq.Context | None = None, wake_fd: int | None = None):
        """`wake_fd`: a file descriptor that, once readable, ends a `recv` wait early (a stop signal's)."""
        self.name = name
        self.deployment = config.deployment
        self._config = config
        self._context = context or zmq.Context.instance()
        self.socket = self._context.socket(zmq.SUB)
        self.socket.setsockopt(zmq.RCVHWM, config.bus_hwm)
        self.socket.setsockopt(zmq.LINGER, 0)
        #: Live frames taken as they come: a subscriber that joins late has lost nothing sent before it did.
        self.positions = StreamPositions(late_join=True)
        self._connected: set[str] = set()
        self.heard: set[str] = set()
        self.finished: set[str] = set()
        self._wake_fd = wake_fd
        self._poller = zmq.Poller()  # built once: Socket.poll builds one per call
        self._poller.register(self.socket, zmq.POLLIN)
        self._stop_poller = zmq.Poller()  # `rest`'s: the stop alone, not the frames
        if wake_fd is not None:
            self._poller.register(wake_fd, zmq.POLLIN)
            self._stop_poller.register(wake_fd, zmq.POLLIN)

    def subscribe(self, publisher: str, record: type[Record]) -> None:
        """Receive `publisher`'s frames of `record`s, and its heartbeats."""
        endpoint = self._config.endpoint(publisher)
        if endpoint not in self._connected:
            self.socket.connect(endpoint)
            self._connected.add(endpoint)
            self.socket.setsockopt(zmq.SUBSCRIBE, stream(self.deployment, publisher, HEARTBEAT).encode())
        self.socket.setsockopt(zmq.SUBSCRIBE, stream(self.deployment, publisher, tag(record)).encode())
        # Presence goes last (again on every call): subscriptions arrive in order,
        # so a publisher that sees it has every data subscription before it.
        self.socket.setsockopt(zmq.SUBSCRIBE, presence_topic(self.deployment, publisher, self.name).encode())

    def recv(self, timeout: float) -> Envelope | Heartbeat | None:
        """The next frame, or None after `timeout` seconds of silence.

        A frame already queued is taken without a poll: under load, that is
        nearly every frame. The wait ends early, with None, when `wake_fd`
        becomes readable.
        """
        if not self.queued():
            ready = dict(self._poller.poll(int(timeout * 1000)))
            if self._wake_fd in ready:
                self._woken()
                return None
            if self.socket not in ready:
                return None
        return self.recv_nowait()

    def rest(self, timeout: float) -> None:
        """Wait `timeout` seconds without waking for frames, which queue meanwhile (up to RCVHWM); a stop
        (`wake_fd`) ends it early. For a consumer that takes its frames in batches: one wake per batch."""
        if timeout > 0 and self._stop_poller.poll(int(timeout * 1000)):
            self._woken()

    def queued(self) -> bool:
        """Is a frame waiting to be taken now?"""
        return bool(self.socket.get(zmq.EVENTS) & zmq.POLLIN)

    def _woken(self) -> None:
        """Take the wake-up bytes, so the waits of a drain after the stop wait again."""
        try:
            os.read(self._wake_fd, 4096)
        except BlockingIOError:
            pass

    def recv_nowait(self) -> Envelope | Heartbeat | None:
        try:
            topic_bytes, payload = self.socket.recv_multipart(zmq.NOBLOCK, copy=True)
        except zmq.Again:
            return None
        publisher = topic_bytes.split(b"/", 2)[1].decode()
        self.heard.add(publisher)
        if topic_bytes.endswith(HEARTBEAT.encode()):
            beat = decode_heartbeat(payload)
            if beat.final:
                self.finished.add(publisher)
            return beat
        self.finished.discard(publisher)
        return decode_envelope(payload)

    def admit(self, frame: Envelope | Heartbeat | None, lost: Callable[[Gap], None]) -> bool:
        """True for an Envelope to process; reports every gap a frame reveals to `lost`
        (`common/transport/sequence.py` judges). A duplicate is not admitted; heartbeats never are."""
        if isinstance(frame, Heartbeat):
            for gap in self.positions.behind(frame):
                lost(gap)
                self.positions.skip(gap)
            return False
        if frame is None:
            return False
        verdict = self.positions.classify(frame)
        if verdict == "had":
            return False
        if verdict == "ahead" and (gap := self.positions.gap(frame)):
            lost(gap)
        self.positions.take(frame)
        return True

    def drain(self, accept: Callable[[Envelope | Heartbeat], None], quiet: float, limit: float) -> None:
        """On shutdown, take what upstream still sends before stopping.

        Returns once every publisher heard from has sent its final heartbeat,
        or no data arrived for `quiet` seconds (a publisher that died says no
        goodbye; an idle one only heartbeats), and in any case after `limit`.
        """
        started = last_data = time.monotonic()
        while time.monotonic() - started < limit:
            if self.heard and self.heard <= self.finished:
                return
            frame = self.recv(0.05)
            if isinstance(frame, Envelope):
                last_data = time.monotonic()
            elif time.monotonic() - last_data >= quiet:
                return
            if frame is not None:
                accept(frame)

    def close(self) -> None:
        self.socket.close()
