"""Mock upstream servers: an aiohttp app on a loopback port, run in a background thread.

Tests script faults (status codes, delays, resets, cut streams) and read back what the
gateway sent and the bytes each answer carried. Each provider mock subclasses MockUpstream
and speaks that provider's format.
"""

from __future__ import annotations

import asyncio
import json
import ssl
import threading
from collections import deque
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web


@dataclass
class Fault:
    """What the next request gets instead of the normal answer."""

    status: int = 200
    body: Any = None  # dict/list (sent as JSON), str or bytes; None: normal answer
    headers: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0  # seconds before answering (a hang, if long)
    reset: bool = False  # drop the connection without answering
    cut_after: int | None = None  # streams: drop the connection after this many events
    event_delay: float = 0.0  # streams: pause between events


@dataclass
class Recorded:
    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]
    body: Any
    raw: bytes = b""  # the body's bytes as they arrived


class MockUpstream:
    def __init__(self) -> None:
        self.requests: list[Recorded] = []
        self.answers: list[bytes] = []  # each answer's body as sent (a stream's events joined)
        self.faults: deque[Fault] = deque()
        self.default_fault: Fault | None = None  # applies to every request when set
        self.port = 0
        self._loop: asyncio.AbstractEventLoop | None = None
        self._runner: web.AppRunner | None = None
        self._thread: threading.Thread | None = None
        self.disconnects = 0  # streams the client abandoned before the end
        self.tls: ssl.SSLContext | None = None  # set before start() to serve https

    # -- to override -----------------------------------------------------------------------

    def routes(self, app: web.Application) -> None:
        raise NotImplementedError

    # -- lifecycle -------------------------------------------------------------------------

    @property
    def url(self) -> str:
        return f"{'https' if self.tls else 'http'}://127.0.0.1:{self.port}"

    def start(self) -> MockUpstream:
        ready = threading.Event()

        def run() -> None:
            loop = asyncio.new_event_loop()
            self._loop = loop
            app = web.Application(client_max_size=64 * 1024 * 1024, middlewares=[self._keep_answer])
            self.routes(app)
            self._runner = web.AppRunner(app, access_log=None)
            loop.run_until_complete(self._runner.setup())
            site = web.TCPSite(self._runner, "127.0.0.1", 0, ssl_context=self.tls)
            loop.run_until_complete(site.start())
            self.port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
            ready.set()
            loop.run_forever()
            loop.run_until_complete(self._runner.cleanup())
            loop.close()

        self._thread = threading.Thread(target=run, daemon=True, name=type(self).__name__)
        self._thread.start()
        ready.wait(10)
        return self

    def stop(self) -> None:
        if self._loop is not None:
            self._loop.call_soon_threadsafe(self._loop.stop)
        if self._thread is not None:
            self._thread.join(10)

    def reset(self) -> None:
        self.requests.clear()
        self.answers.clear()
        self.faults.clear()
        self.default_fault = None
        self.disconnects = 0

    def fail_next(self, *faults: Fault) -> None:
        self.faults.extend(faults)

    @property
    def last(self) -> Recorded:
        return self.requests[-1]

    # -- helpers for subclasses ------------------------------------------------------------

    @web.middleware
    async def _keep_answer(self, request: web.Request, handler: Any) -> web.StreamResponse:
        response = await handler(request)
        if isinstance(response, web.Response) and isinstance(response.body, bytes):
            self.answers.append(response.body)
        return response

    async def record(self, request: web.Request) -> Recorded:
        raw = await request.read()
        try:
            body: Any = json.loads(raw) if raw else None
        except ValueError:
            body = raw
        entry = Recorded(
            request.method, request.path, dict(request.query), dict(request.headers), body, raw
        )
        self.requests.append(entry)
        return entry

    def take_fault(self) -> Fault | None:
        if self.faults:
            return self.faults.popleft()
        return self.default_fault

    async def apply_fault(
        self, request: web.Request, fault: Fault | None
    ) -> web.StreamResponse | None:
        """Answer with the fault if it replaces the normal answer; None to answer normally."""
        if fault is None:
            return None
        if fault.delay:
            await asyncio.sleep(fault.delay)
        if fault.reset:
            transport = request.transport
            if transport is not None:
                transport.abort()
            raise ConnectionResetError("mock reset")
        if fault.body is None and fault.status == 200:
            return None  # only a delay, or stream shaping: answer normally
        body = fault.body
        if isinstance(body, dict | list):
            return web.json_response(body, status=fault.status, headers=fault.headers)
        if isinstance(body, str):
            body = body.encode()
        return web.Response(
            body=body or b"",
            status=fault.status,
            headers=fault.headers,
            content_type=fault.headers.get("content-type", "application/json"),
        )

    async def stream_events(
        self, request: web.Request, events: list[bytes], fault: Fault | None
    ) -> web.StreamResponse:
        """Send pre-encoded SSE events one write at a time, honoring cut_after/event_delay."""
        response = web.StreamResponse(
            status=200, headers={"content-type": "text/event-stream", "cache-control": "no-cache"}
        )
        await response.prepare(request)
        self.answers.append(b"")
        slot = len(self.answers) - 1
        try:
            for index, event in enumerate(events):
                if fault and fault.cut_after is not None and index >= fault.cut_after:
                    if request.transport is not None:
                        request.transport.abort()
                    return response
                self.answers[slot] += event  # first: the client may have it all at once
                await response.write(event)
                if fault and fault.event_delay:
                    await asyncio.sleep(fault.event_delay)
            await response.write_eof()
        except (ConnectionResetError, asyncio.CancelledError):
            self.disconnects += 1
            raise
        return response


def sse(data: Any, event: str | None = None) -> bytes:
    """One SSE event; dicts are JSON-encoded compactly, as providers do."""
    payload = (
        data
        if isinstance(data, str)
        else json.dumps(data, separators=(",", ":"), ensure_ascii=False)
    )
    prefix = f"event: {event}\n" if event else ""
    return f"{prefix}data: {payload}\n\n".encode()
