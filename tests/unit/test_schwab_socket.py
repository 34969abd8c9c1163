"""Ingest's reach into schwab-py's socket: reading in bursts, and handing over what it queued before closing."""

from __future__ import annotations

import asyncio

from common.feed.schwab_socket import Pacing, finish
from tests.helpers.fake_stream import FakeSocket, FakeStream, FakeTransport


def stream_on(socket: FakeSocket | None) -> FakeStream:
    stream = FakeStream()
    stream._socket = socket  # type: ignore[assignment]
    return stream


def test_a_message_received_or_queued_is_a_backlog():
    socket = FakeSocket(FakeTransport())
    pacing = Pacing(stream_on(socket))  # type: ignore[arg-type]
    assert not pacing.backlog()
    socket.messages.append("{}")
    assert pacing.backlog()
    socket.messages.clear()
    pacing.stream._overflow_items.append({"data": []})
    assert pacing.backlog()


def test_a_rest_leaves_the_socket_unread_then_reads_again():
    transport = FakeTransport()
    asyncio.run(Pacing(stream_on(FakeSocket(transport)), pace=0).rest())  # type: ignore[arg-type]
    assert transport.calls == ["pause", "resume"] and transport.reading


def test_a_paused_closing_or_absent_transport_is_left_alone():
    for transport in (FakeTransport(reading=False), FakeTransport(closing=True)):
        asyncio.run(Pacing(stream_on(FakeSocket(transport)), pace=0).rest())  # type: ignore[arg-type]
        assert transport.calls == []
    asyncio.run(Pacing(stream_on(None), pace=0).rest())  # type: ignore[arg-type]


def test_finish_hands_over_what_schwab_py_queued_then_closes_the_socket():
    socket = FakeSocket(FakeTransport())
    stream = stream_on(socket)
    handled: list[dict] = []

    async def handle_message() -> None:
        handled.append(stream._overflow_items.pop())

    stream.handle_message = handle_message  # type: ignore[method-assign]
    stream._overflow_items.extend([{"data": [1]}, {"data": [2]}])
    asyncio.run(finish(stream))  # type: ignore[arg-type]
    assert len(handled) == 2 and socket.closed and socket.transport.calls == []


def test_a_socket_that_will_not_close_is_aborted():
    socket = FakeSocket(FakeTransport(), close_error=OSError("broken pipe"))
    asyncio.run(finish(stream_on(socket)))  # type: ignore[arg-type]
    assert socket.transport.calls == ["abort"]
