"""The one place ingest reaches into schwab-py's private attributes, and why no public way exists.

schwab-py's `StreamClient` offers `handle_message` (read one message and
hand it to the handlers) and `logout`, nothing else about its socket: no call
says whether a message is already received, none pauses reading, none hands
over what it queued while it awaited a command's answer, and none closes the
socket. Ingest needs all four: reading in bursts (`Pacing`) and losing no
tick when a connection ends (`finish`). So these two read `_socket` (a legacy
websockets protocol, whose public `messages` and `transport` are websockets'
own) and `_overflow_items` (schwab-py's queue of messages received while it
awaited an answer), and nothing else in the service does.
"""

from __future__ import annotations

import asyncio

from schwab.streaming import StreamClient
from websockets.exceptions import ConnectionClosed

#: After each burst of small messages the socket is left unread this long. Schwab (and the simulator) can send
#: hundreds of small messages a second; read one by one, each costs three turns of the event loop and a bus frame
#: per kind downstream. Read in bursts, they share the wake-ups and the frames; none waits longer than this.
#: A burst whose records were sent as they came (COALESCE_RECORDS) gains nothing by a rest, which costs a wake.
PACE = 0.01
#: How long closing the socket may take before its transport is aborted.
CLOSE_TIMEOUT = 2.0


class Pacing:
    """Reads schwab-py's socket in bursts: what is ready is handled at once; then the socket is left unread."""

    def __init__(self, stream: StreamClient, pace: float = PACE):
        self.stream = stream
        self.pace = pace

    def backlog(self) -> bool:
        """Is a message received and waiting, so the next read takes it without waiting?"""
        socket = self.stream._socket
        return bool(self.stream._overflow_items) or (socket is not None and bool(socket.messages))

    async def rest(self) -> None:
        """`pace` seconds with the socket unread: what arrives waits in the kernel, to be read as one burst.
        A transport already paused (its reader's buffer is full) is left as it is."""
        socket = self.stream._socket
        transport = None if socket is None else socket.transport
        if transport is None or transport.is_closing() or not transport.is_reading():
            return
        transport.pause_reading()
        try:
            await asyncio.sleep(self.pace)
        finally:
            transport.resume_reading()


async def finish(stream: StreamClient) -> None:
    """Hand the handlers what schwab-py received but has not handed over yet, then close the socket.

    Data arriving while schwab-py awaits a command's answer (an option ADD, say)
    waits in its private queue that only `handle_message` empties; a connection
    given up with ticks in it would lose them.
    """
    socket = stream._socket
    try:
        while stream._overflow_items:
            await stream.handle_message()
    finally:
        if socket is not None:
            try:
                await asyncio.wait_for(socket.close(), CLOSE_TIMEOUT)
            except (TimeoutError, ConnectionClosed, OSError):
                socket.transport.abort()
