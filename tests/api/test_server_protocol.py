"""The server connection's writes: one system call for what a turn and the next produced, the
same bytes in order, nothing lost at close, nothing written to a closed connection."""

from __future__ import annotations

import asyncio

from perpetuo.api.server_protocol import _TurnWriter


async def turns(n: int = 2) -> None:
    for _ in range(n):
        await asyncio.sleep(0)


class Transport:
    def __init__(self):
        self.writes: list[bytes] = []
        self.closed = False
        self.aborted = False

    def write(self, data):
        assert not self.closed
        self.writes.append(bytes(data))

    def writelines(self, pieces):
        self.write(b"".join(pieces))  # one system call for all of them, as uvloop's does

    def is_closing(self):
        return self.closed

    def close(self):
        self.closed = True

    def abort(self):
        self.aborted = self.closed = True

    def get_write_buffer_size(self):
        return 0


async def test_a_turns_writes_reach_the_socket_as_one():
    raw = Transport()
    writer = _TurnWriter(raw, asyncio.get_running_loop())
    writer.write(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\n")
    writer.write(b"{}")
    assert raw.writes == [] and writer.get_write_buffer_size() == 40
    await turns()
    assert raw.writes == [b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\n{}"]
    writer.write(b"5\r\nlater\r\n")  # later: its own write
    await turns()
    assert raw.writes[1:] == [b"5\r\nlater\r\n"]


async def test_a_stream_head_goes_out_with_what_its_pump_had_ready():
    raw = Transport()
    writer = _TurnWriter(raw, asyncio.get_running_loop())

    async def pump():  # started in the turn that wrote the head, as StreamingResponse does
        writer.write(b"a\r\ndata: x\n\n\r\n")

    writer.write(b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n")
    task = asyncio.ensure_future(pump())
    await turns()
    await task
    assert raw.writes == [
        b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\na\r\ndata: x\n\n\r\n"
    ]


async def test_close_sends_what_was_written_first():
    raw = Transport()
    writer = _TurnWriter(raw, asyncio.get_running_loop())
    writer.write(b"last piece")
    writer.close()
    assert raw.writes == [b"last piece"] and raw.closed
    await turns()  # the scheduled flush finds nothing left
    assert raw.writes == [b"last piece"]


async def test_a_closed_or_aborted_connection_gets_nothing():
    raw = Transport()
    writer = _TurnWriter(raw, asyncio.get_running_loop())
    writer.write(b"for nobody")
    raw.closed = True  # the client went away meanwhile
    await turns()
    assert raw.writes == []
    raw2 = Transport()
    writer2 = _TurnWriter(raw2, asyncio.get_running_loop())
    writer2.write(b"dropped")
    writer2.abort()
    await turns()
    assert raw2.writes == [] and raw2.aborted


async def test_a_large_body_goes_out_whole_after_its_head():
    raw = Transport()
    writer = _TurnWriter(raw, asyncio.get_running_loop())
    head, body = b"HTTP/1.1 200 OK\r\ncontent-length: 200000\r\n\r\n", b"x" * 200_000
    writer.write(head)
    writer.write(body)
    await turns()
    assert b"".join(raw.writes) == head + body
