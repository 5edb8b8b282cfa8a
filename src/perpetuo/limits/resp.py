"""A small pipelined Redis client for the limits scripts, on asyncio protocols.

Why not redis-py here: with limits on Redis every request makes an admission and a settlement
script call, and redis-py spent 57% of the limits engine's CPU on them (`python -m
bench.limits` under cProfile: argument encoding and command packing alone 21%, reply parsing
14%, the connection pool and its timeouts most of the rest), 0.3-0.4 ms per request at
concurrency 1. This client does the one thing the hot path needs: send a command on one
connection and match replies to callers in order (RESP2 pipelining; Redis answers in the
order it reads), with no pool, no per-call timeout objects and a packer that builds each
command with one join. Everything else (pub/sub, caches, throttles) stays on redis-py.

Failure handling is the caller's: a call raises `ConnectionError` when the connection drops,
cannot be made in `connect_timeout`, or has had a command unanswered for `reply_timeout` (the
connection is then dropped and the next call opens a new one), and `ReplyError` for an error
reply. A caller that gives up (cancelled) leaves its place in the queue: its reply is read
and dropped when it comes, so the replies after it still go to their own callers.
"""

from __future__ import annotations

import asyncio
import ssl
from collections import deque
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

MAX_BUFFER = 16 * 1024 * 1024  # bytes of one unfinished reply: more is a broken stream
MAX_PENDING = 10_000  # commands awaiting replies on the connection: more fail at once

Reply = int | bytes | str | list["Reply"] | None


class ReplyError(Exception):
    """Redis answered with an error (`-ERR ...`, `-NOSCRIPT ...`)."""


class ProtocolError(ConnectionError):
    """Bytes that are not RESP2: the connection is dropped."""


class _Incomplete(Exception):
    """The buffer ends inside a reply."""


def pack(args: tuple[Any, ...]) -> bytes:
    """One command in RESP: an array of bulk strings (str, bytes, int or float arguments)."""
    # The limits' commands are ints and ASCII names: built as one str and encoded once (a
    # quarter faster than bytes argument by argument, for about 60 arguments), where a
    # character is a byte, so a str's length is its bulk length.
    parts = [f"*{len(args)}\r\n"]
    append = parts.append
    for arg in args:
        kind = type(arg)  # exact types: a third faster than isinstance chains
        if kind is int:
            text = str(arg)
            append(f"${len(text)}\r\n{text}\r\n")
        elif kind is str and arg.isascii():
            append(f"${len(arg)}\r\n{arg}\r\n")
        else:
            return _pack_bytes(args)
    return "".join(parts).encode()


def _pack_bytes(args: tuple[Any, ...]) -> bytes:
    parts = [b"*%d\r\n" % len(args)]
    append = parts.append
    for arg in args:
        kind = type(arg)
        if kind is str:
            data = arg.encode()
        elif kind is int:
            data = b"%d" % arg
        elif kind is bytes:
            data = arg
        elif isinstance(arg, str):
            data = str(arg).encode()
        elif isinstance(arg, int | float) and not isinstance(arg, bool):
            data = repr(arg).encode() if isinstance(arg, float) else b"%d" % arg
        else:
            raise TypeError(f"cannot send {kind.__name__} to Redis")
        append(b"$%d\r\n%b\r\n" % (len(data), data))
    return b"".join(parts)


def parse(buffer: bytes | bytearray, at: int) -> tuple[Reply | ReplyError, int]:
    """The reply starting at `at` and where the next begins; `_Incomplete` if it is cut."""
    end = buffer.find(b"\r\n", at)
    if end < 0:
        raise _Incomplete
    kind, line, at = buffer[at], buffer[at + 1 : end], end + 2
    if kind == 58:  # ':' integer
        return int(line), at
    if kind == 42:  # '*' array
        count = int(line)
        if count < 0:
            return None, at
        items: list[Reply] = []
        for _ in range(count):
            item, at = parse(buffer, at)
            items.append(item)  # type: ignore[arg-type]  # an error inside stays a value
        return items, at
    if kind == 36:  # '$' bulk string
        size = int(line)
        if size < 0:
            return None, at
        if len(buffer) < at + size + 2:
            raise _Incomplete
        return bytes(buffer[at : at + size]), at + size + 2
    if kind == 43:  # '+' simple string
        return bytes(line).decode(), at
    if kind == 45:  # '-' error
        return ReplyError(bytes(line).decode(errors="replace")), at
    raise ProtocolError(f"unexpected reply type {chr(kind)!r}")


class _Connection(asyncio.Protocol):
    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop
        self._transport: asyncio.Transport | None = None
        self._pending: deque[tuple[asyncio.Future[Reply], float]] = deque()
        self._buffer = bytearray()
        self.lost = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = transport  # type: ignore[assignment]

    def send(self, command: bytes) -> asyncio.Future[Reply]:
        if self.lost or self._transport is None:
            raise ConnectionError("connection to Redis lost")
        if len(self._pending) >= MAX_PENDING:
            raise ConnectionError("too many commands awaiting Redis")
        future: asyncio.Future[Reply] = self._loop.create_future()
        self._pending.append((future, self._loop.time()))
        self._transport.write(command)
        return future

    def stalled(self, reply_timeout: float) -> bool:
        """A command has waited longer than `reply_timeout` for its reply."""
        return bool(self._pending) and self._loop.time() - self._pending[0][1] > reply_timeout

    def data_received(self, data: bytes) -> None:
        buffer: bytes | bytearray = data
        if self._buffer:
            self._buffer += data
            buffer = self._buffer
        at = 0
        try:
            while at < len(buffer):
                reply, at = parse(buffer, at)
                if not self._pending:
                    raise ProtocolError("a reply nobody asked for")
                future, _ = self._pending.popleft()
                if future.done():  # its caller gave up
                    continue
                if isinstance(reply, ReplyError):
                    future.set_exception(reply)
                else:
                    future.set_result(reply)
        except _Incomplete:
            if len(buffer) - at > MAX_BUFFER:
                self.abort(ProtocolError("reply larger than the buffer allows"))
                return
        except (ProtocolError, ValueError) as exc:
            self.abort(exc if isinstance(exc, ProtocolError) else ProtocolError(str(exc)))
            return
        if buffer is self._buffer:
            del self._buffer[:at]
        elif at < len(buffer):  # a reply cut in two: keep its start
            self._buffer = bytearray(buffer[at:])

    def abort(self, reason: Exception) -> None:
        if self._transport is not None:
            self._transport.abort()
        self._fail(reason)

    def connection_lost(self, exc: Exception | None) -> None:
        self._fail(ConnectionError(f"connection to Redis lost: {exc or 'closed'}"))

    def _fail(self, reason: Exception) -> None:
        self.lost = True
        while self._pending:
            future, _ = self._pending.popleft()
            if not future.done():
                future.set_exception(reason)


def parse_url(url: str) -> dict[str, Any]:
    """The connection options of a `redis://`, `rediss://` or `unix://` URL, as redis-py reads
    them: user and password, the database from `?db=` or the path, and for TLS
    `?ssl_cert_reqs=` and `?ssl_ca_certs=` (redis-py itself is not loaded for this)."""
    parsed = urlsplit(url)
    query = {name: values[0] for name, values in parse_qs(parsed.query).items() if values}
    options: dict[str, Any] = {}
    if parsed.scheme == "unix":
        options["path"] = unquote(parsed.path)
    elif parsed.scheme in ("redis", "rediss"):
        options["host"] = unquote(parsed.hostname or "localhost")
        options["port"] = parsed.port or 6379
        path = unquote(parsed.path).strip("/")
        if path and "db" not in query:
            query["db"] = path
    else:
        raise ValueError("a Redis URL starts with redis://, rediss:// or unix://")
    if parsed.username:
        options["username"] = unquote(parsed.username)
    if parsed.password:
        options["password"] = unquote(parsed.password)
    if query.get("db"):
        if not query["db"].isdigit():
            raise ValueError("the database must be a number (redis://host:6379/0)")
        options["db"] = int(query["db"])
    for name in ("ssl_cert_reqs", "ssl_ca_certs"):
        if name in query:
            options[name] = query[name]
    return options


class RespClient:
    def __init__(self, url: str, *, connect_timeout: float, reply_timeout: float) -> None:
        self._options = parse_url(url)
        self._tls = url.startswith("rediss://")
        self._connect_timeout = connect_timeout
        self._reply_timeout = reply_timeout
        self._connection: _Connection | None = None
        self._connecting = asyncio.Lock()

    async def execute(self, *args: Any) -> Reply:
        connection = self._connection
        if connection is None or connection.lost:
            connection = await self._connect()
        elif connection.stalled(self._reply_timeout):
            connection.abort(ConnectionError("Redis did not answer in time"))
            connection = await self._connect()
        return await connection.send(pack(args))

    async def _connect(self) -> _Connection:
        async with self._connecting:
            if self._connection is not None and not self._connection.lost:
                return self._connection  # another caller connected meanwhile
            loop = asyncio.get_running_loop()
            options = self._options
            async with asyncio.timeout(self._connect_timeout):
                if "path" in options:
                    _, connection = await loop.create_unix_connection(
                        lambda: _Connection(loop), options["path"]
                    )
                else:
                    _, connection = await loop.create_connection(
                        lambda: _Connection(loop),
                        options["host"],
                        options["port"],
                        ssl=self._ssl_context() if self._tls else None,
                    )
                setup = []
                if options.get("password"):
                    user = options.get("username")
                    credentials = (user, options["password"]) if user else (options["password"],)
                    setup.append(connection.send(pack(("AUTH", *credentials))))
                if options.get("db"):
                    setup.append(connection.send(pack(("SELECT", options["db"]))))
                try:
                    await asyncio.gather(*setup)
                except BaseException:
                    connection.abort(ConnectionError("Redis refused the connection's setup"))
                    raise
            self._connection = connection
            return connection

    def _ssl_context(self) -> ssl.SSLContext:
        context = ssl.create_default_context(cafile=self._options.get("ssl_ca_certs"))
        if self._options.get("ssl_cert_reqs") == "none":
            context.check_hostname = False
            context.verify_mode = ssl.CERT_NONE
        return context

    async def aclose(self) -> None:
        if self._connection is not None:
            self._connection.abort(ConnectionError("client closed"))
            self._connection = None
