"""Running the demo provider: inside the gateway (for `type: demo` providers) or alone."""

from __future__ import annotations

import asyncio
import contextlib
import socket

import uvicorn

from perpetuo.demo.app import app


class _QuietServer(uvicorn.Server):
    """A uvicorn server that leaves signals to the gateway's own server."""

    def capture_signals(self) -> contextlib.AbstractContextManager[None]:  # type: ignore[override]
        return contextlib.nullcontext()


class EmbeddedDemo:
    """The demo server on a loopback port bound at once (so deployments know their URL
    before the event loop runs) and served by the gateway's own event loop."""

    def __init__(self) -> None:
        self._socket = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._socket.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._socket.bind(("127.0.0.1", 0))
        self.port: int = self._socket.getsockname()[1]
        self._server: uvicorn.Server | None = None
        self._task: asyncio.Task[None] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    async def start(self) -> None:
        config = uvicorn.Config(app, log_level="warning", access_log=False, lifespan="off")
        self._server = _QuietServer(config)
        self._task = asyncio.create_task(self._server.serve(sockets=[self._socket]))

    async def aclose(self) -> None:
        global _embedded
        if self._server is not None and self._task is not None:
            self._server.should_exit = True
            with contextlib.suppress(asyncio.CancelledError):
                await asyncio.wait_for(self._task, 5)
        self._socket.close()
        if _embedded is self:  # a gateway built later in this process binds a new one
            _embedded = None


def run_standalone(host: str, port: int) -> None:
    uvicorn.run(app, host=host, port=port, log_level="info", lifespan="off")


_embedded: EmbeddedDemo | None = None


def embedded() -> EmbeddedDemo:
    """This process's demo server (bound on first use; served once the gateway starts)."""
    global _embedded
    if _embedded is None:
        _embedded = EmbeddedDemo()
    return _embedded


def embedded_if_used() -> EmbeddedDemo | None:
    return _embedded
