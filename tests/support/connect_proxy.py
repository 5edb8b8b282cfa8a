"""An HTTP CONNECT proxy on loopback for tests, on its own thread and event loop (so a test
that blocks on a gateway process still has a working proxy).

It records every request it gets (method, target, Proxy-Authorization), can require Basic
credentials (407 otherwise), answers 502 when the target cannot be reached, and relays the
tunnel's bytes both ways, counting the tunnels it opened.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import ssl
import threading
from dataclasses import dataclass


@dataclass
class ProxyRequest:
    method: str
    target: str  # "host:port" for CONNECT
    authorization: str | None
    status: int = 0  # what the proxy answered


class ConnectProxy:
    def __init__(
        self,
        username: str | None = None,
        password: str | None = None,
        tls: ssl.SSLContext | None = None,  # an https proxy: TLS to the proxy itself
    ) -> None:
        self.username = username
        self.password = password
        self.tls = tls
        self.requests: list[ProxyRequest] = []
        self.port = 0
        self._loop: asyncio.AbstractEventLoop | None = None
        self._server: asyncio.Server | None = None
        self._thread: threading.Thread | None = None
        self._writers: set[asyncio.StreamWriter] = set()

    @property
    def url(self) -> str:
        return f"{self._scheme}://127.0.0.1:{self.port}"

    def url_with(self, username: str, password: str) -> str:
        return f"{self._scheme}://{username}:{password}@127.0.0.1:{self.port}"

    @property
    def _scheme(self) -> str:
        return "https" if self.tls else "http"

    @property
    def tunnels(self) -> list[ProxyRequest]:
        """The CONNECT requests that opened a tunnel."""
        return [r for r in self.requests if r.method == "CONNECT" and r.status == 200]

    def start(self) -> ConnectProxy:
        ready = threading.Event()

        def run() -> None:
            loop = self._loop = asyncio.new_event_loop()
            self._server = loop.run_until_complete(
                asyncio.start_server(self._handle, "127.0.0.1", 0, ssl=self.tls)
            )
            self.port = self._server.sockets[0].getsockname()[1]
            ready.set()
            loop.run_forever()
            loop.run_until_complete(loop.shutdown_asyncgens())
            loop.close()

        self._thread = threading.Thread(target=run, daemon=True, name="connect-proxy")
        self._thread.start()
        ready.wait(10)
        return self

    def stop(self) -> None:
        loop, server = self._loop, self._server
        if loop is None or server is None:
            return

        async def shutdown() -> None:
            server.close()
            for writer in list(self._writers):  # ends the relays (no task is cancelled)
                writer.transport.abort()

        asyncio.run_coroutine_threadsafe(shutdown(), loop).result(10)
        loop.call_soon_threadsafe(loop.stop)
        if self._thread is not None:
            self._thread.join(10)

    def __enter__(self) -> ConnectProxy:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- the proxy ---------------------------------------------------------------------------

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            head = await reader.readuntil(b"\r\n\r\n")
        except (asyncio.IncompleteReadError, asyncio.LimitOverrunError, ConnectionError):
            writer.close()
            return
        lines = head.decode("latin-1").split("\r\n")
        method, target, _ = [*lines[0].split(" ", 2), "", ""][:3]
        headers = {}
        for line in lines[1:]:
            name, sep, value = line.partition(":")
            if sep:
                headers[name.strip().lower()] = value.strip()
        request = ProxyRequest(method, target, headers.get("proxy-authorization"))
        self.requests.append(request)
        if method != "CONNECT":
            return await self._answer(writer, request, 405, "Method Not Allowed")
        if self.username is not None and request.authorization != self._expected():
            extra = 'proxy-authenticate: Basic realm="test"\r\n'
            return await self._answer(writer, request, 407, "Proxy Authentication Required", extra)
        host, _, port = target.rpartition(":")
        try:
            up_reader, up_writer = await asyncio.open_connection(host.strip("[]"), int(port))
        except (OSError, ValueError):
            return await self._answer(writer, request, 502, "Bad Gateway")
        request.status = 200
        self._writers.update((writer, up_writer))
        writer.write(b"HTTP/1.1 200 Connection established\r\n\r\n")
        await writer.drain()
        await asyncio.gather(_pipe(reader, up_writer), _pipe(up_reader, writer))
        self._writers.difference_update((writer, up_writer))

    def _expected(self) -> str:
        pair = f"{self.username}:{self.password}".encode()
        return "Basic " + base64.b64encode(pair).decode()

    @staticmethod
    async def _answer(
        writer: asyncio.StreamWriter, request: ProxyRequest, status: int, reason: str, extra=""
    ) -> None:
        request.status = status
        writer.write(f"HTTP/1.1 {status} {reason}\r\n{extra}content-length: 0\r\n\r\n".encode())
        with contextlib.suppress(ConnectionError):
            await writer.drain()
        writer.close()


async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while data := await reader.read(65536):
            writer.write(data)
            await writer.drain()
    except ConnectionError:
        pass
    finally:
        with contextlib.suppress(Exception):
            writer.close()
