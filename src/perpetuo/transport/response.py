"""An upstream response: status and headers at once, the body read whole or streamed.

Reading is where an upstream's size claims meet the deployment's caps (transport/caps.py):
a body past its cap, a decoded size or ratio past the limits, or a declared content-length
over the cap ends the exchange at once, aborting the connection and dropping what was read.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import TYPE_CHECKING

from perpetuo.transport.caps import UNCOUNTED_BYTES, Inflater, ResponseCaps
from perpetuo.transport.errors import ResponseTooLarge, UpstreamTimeout

if TYPE_CHECKING:
    from perpetuo.transport.client import HTTPClient
    from perpetuo.transport.connection import Connection

DEFAULT_CAPS = ResponseCaps()


class UpstreamResponse:
    """Status and headers of an upstream answer; the body is read or streamed on demand,
    within the caps: past one, the exchange is aborted and ResponseTooLarge raised."""

    __slots__ = (
        "_caps",
        "_client",
        "_conn",
        "_deadline",
        "_encoding",
        "_read_timeout",
        "headers",
        "status",
    )

    def __init__(
        self,
        client: HTTPClient,
        conn: Connection,
        read_timeout: float,
        deadline: float,
        caps: ResponseCaps = DEFAULT_CAPS,
    ) -> None:
        self._client = client
        self._conn: Connection | None = conn
        self._read_timeout = read_timeout
        self._deadline = deadline
        self._caps = caps
        self.status = conn.status
        self.headers = dict(conn.headers)  # later duplicates win; fine for what we read
        self._encoding = self.headers.get("content-encoding", "")

    @property
    def caps(self) -> ResponseCaps:
        return self._caps

    async def _next(self, conn: Connection) -> bytes | None:
        """The next body piece, waiting at most the read timeout (and never past the deadline,
        which is checked here too: a peer that always has data ready never makes us wait)."""
        loop_time = conn._loop.time()
        if loop_time >= self._deadline:
            raise UpstreamTimeout("total")
        limit = loop_time + self._read_timeout
        if limit < self._deadline:
            return await conn.next_chunk(limit, "read")
        return await conn.next_chunk(self._deadline, "total")

    async def iter_bytes(self) -> AsyncIterator[bytes]:
        """Body pieces as they arrive (decoded pieces at most caps.max_decompressed_bytes)."""
        conn = self._conn
        if conn is None:
            return
        caps = self._caps
        inflater = (
            Inflater.for_encoding(
                self._encoding, caps.max_decompressed_bytes, caps.max_decompression_ratio
            )
            if self._encoding
            else None
        )
        try:
            while (chunk := await self._next(conn)) is not None:
                if inflater is None:
                    yield chunk
                else:
                    for piece in inflater.stream(chunk):
                        yield piece
            if inflater is not None and (tail := inflater.flush()):
                yield tail
        except ResponseTooLarge:
            conn.abort()
            raise
        finally:
            self.close()

    async def read(self) -> bytes:
        """The whole body, at most caps.max_body_bytes once decoded."""
        conn = self._conn
        if conn is None:
            return b""
        caps = self._caps
        limit = caps.max_body_bytes
        inflater = None
        if self._encoding:
            inflater = Inflater.for_encoding(
                self._encoding,
                min(limit, caps.max_decompressed_bytes),
                caps.max_decompression_ratio,
            )
        pieces: list[bytes] = []
        size = counted = 0
        budget = self._client.body_budget
        try:
            declared = self.headers.get("content-length")
            if declared is not None and declared.isdigit() and int(declared) > limit:
                raise ResponseTooLarge("body", limit)  # said so up front: do not read it
            while (chunk := await self._next(conn)) is not None:
                if inflater is not None:
                    chunk = inflater.inflate(chunk)
                size += len(chunk)
                if size > limit:
                    raise ResponseTooLarge("body", limit)
                if size > UNCOUNTED_BYTES:  # a large body: it shares one budget with the rest
                    budget.take(size - UNCOUNTED_BYTES - counted)
                    counted = size - UNCOUNTED_BYTES
                pieces.append(chunk)
            if inflater is not None:
                pieces.append(inflater.flush())
        except ResponseTooLarge:
            pieces.clear()
            conn.abort()
            raise
        finally:
            if counted:
                budget.give_back(counted)
            self.close()
        return pieces[0] if len(pieces) == 1 else b"".join(pieces)

    def has_buffered(self) -> bool:
        """True when body bytes have arrived that were not read yet."""
        conn = self._conn
        return conn is not None and bool(conn._chunks)

    def close(self) -> None:
        """Return the connection to the pool if the exchange completed, else drop it."""
        conn, self._conn = self._conn, None
        if conn is not None:
            self._client._release(conn)

    async def __aenter__(self) -> UpstreamResponse:
        return self

    async def __aexit__(self, *exc: object) -> None:
        self.close()
