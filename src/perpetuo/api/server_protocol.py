"""The HTTP server's connection protocol: uvicorn's httptools one, writing what a request
produces in one turn of the event loop, and the next, in one system call.

uvicorn writes a response's status line and headers, then every body piece, each with its own
system call; a JSON answer is two writes and a stream at least three. Here a connection's
writes are held and written together two loop iterations after the first of them (before the
loop waits for I/O a second time): a JSON answer is one write, and a stream's head goes out
with the events its pump task, started in the same turn, had ready. The same bytes in the
same order, a few microseconds later at most. On loopback a write costs about as much CPU as
the gateway's own work on a request.
"""

from __future__ import annotations

import asyncio
from typing import Any

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

_JOIN_BELOW = 65536  # pieces smaller than this in all are joined; larger ones are not copied


class _TurnWriter:
    """A transport whose writes in a loop turn and the next reach the socket as one write."""

    __slots__ = ("_loop", "_pending", "_transport")

    def __init__(self, transport: asyncio.Transport, loop: asyncio.AbstractEventLoop) -> None:
        self._transport = transport
        self._loop = loop
        self._pending: list[bytes] = []

    def write(self, data: bytes) -> None:
        if not data:
            return
        if not self._pending:
            self._loop.call_soon(self._flush_next)
        self._pending.append(data)

    def _flush_next(self) -> None:
        # One more iteration: a task started in the writing turn (a stream's pump) runs its
        # first step in the next, before this.
        self._loop.call_soon(self.flush)

    def flush(self) -> None:
        pending = self._pending
        if not pending:
            return
        self._pending = []
        if self._transport.is_closing():
            return  # the peer is gone: what it would have read goes nowhere, as before
        if len(pending) == 1:
            self._transport.write(pending[0])
        elif sum(map(len, pending)) < _JOIN_BELOW:
            self._transport.write(b"".join(pending))
        else:  # a large body is not copied to be joined: the transport writes the pieces
            self._transport.writelines(pending)

    def writelines(self, pieces: Any) -> None:
        for piece in pieces:
            self.write(piece)

    def close(self) -> None:
        self.flush()  # a close after a response's last piece still sends the piece
        self._transport.close()

    def write_eof(self) -> None:
        self.flush()
        self._transport.write_eof()

    def abort(self) -> None:
        self._pending = []
        self._transport.abort()

    def get_write_buffer_size(self) -> int:
        return self._transport.get_write_buffer_size() + sum(map(len, self._pending))

    # The calls uvicorn makes per request, passed straight through.
    def is_closing(self) -> bool:
        return self._transport.is_closing()

    def pause_reading(self) -> None:
        self._transport.pause_reading()

    def resume_reading(self) -> None:
        self._transport.resume_reading()

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return self._transport.get_extra_info(name, default)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._transport, name)


class GatewayHttpProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol over a `_TurnWriter`: `uvicorn.run(http=...)` takes it."""

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(_TurnWriter(transport, self.loop))  # type: ignore[arg-type]

    def _unsupported_upgrade_warning(self) -> None:
        """The gateway serves no WebSocket (the server runs with `ws="none"`, sparing the
        library's modules): an upgrade request is answered as plain HTTP, and not logged,
        since anyone could fill the log with them."""
