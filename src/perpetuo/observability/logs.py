"""Structured logs: JSON lines (or readable text for development), written off the event loop.

Records go through a queue to a background thread, so a slow terminal or log shipper never
blocks request handling. Requests get one line each at info from the `perpetuo.access`
logger, with ids (never keys), routing, status, latency and tokens: every failed request,
and successful ones up to a rate (100 a second by default; the request log in the database
has every request, and an access line per request under load would take as much room as
it). Routes can be sampled or turned off. A minute's skipped lines are counted in one line;
lines the output cannot take fast enough are dropped oldest first, within a byte budget.
"""

from __future__ import annotations

import atexit
import datetime as dt
import logging
import logging.handlers
import queue
import random
import sys
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import msgspec

if TYPE_CHECKING:
    from perpetuo.config.settings import Settings
    from perpetuo.pipeline.context import RequestContext

ACCESS = logging.getLogger("perpetuo.access")
_encode = msgspec.json.Encoder().encode
# Record attributes that are not extra fields (uvicorn adds an ANSI-coloured copy of messages).
_STANDARD = frozenset(logging.makeLogRecord({}).__dict__) | {
    "message",
    "asctime",
    "taskName",
    "color_message",
}
_listener: logging.handlers.QueueListener | None = None


class JSONFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": dt.datetime.fromtimestamp(record.created, dt.UTC).isoformat(
                timespec="milliseconds"
            ),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        for key, value in record.__dict__.items():
            if key not in _STANDARD and not key.startswith("_"):
                entry[key] = value
        if record.exc_info and record.exc_info[0] is not None:
            entry["exception"] = record.exc_info[0].__name__
        return _encode(entry).decode()


class TextFormatter(logging.Formatter):
    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)-7s %(name)s: %(message)s")

    def format(self, record: logging.LogRecord) -> str:
        line = super().format(record)
        extras = {
            k: v for k, v in record.__dict__.items() if k not in _STANDARD and not k.startswith("_")
        }
        if extras:
            line += " " + " ".join(f"{k}={v}" for k, v in extras.items() if v is not None)
        return line


@dataclass(frozen=True, slots=True)
class AccessPolicy:
    """Which requests get an access line (failures always, unless their route is off)."""

    max_per_second: float = 100.0  # successful requests; 0: every one
    routes: dict[str, float] = field(default_factory=dict)  # endpoint -> sampling rate
    buffer_bytes: int = 8 * 1024 * 1024

    @classmethod
    def from_settings(cls, settings: Settings) -> AccessPolicy:
        return cls(
            settings.access_log_max_per_second,
            settings.access_routes(),
            settings.access_log_buffer_bytes,
        )


def configure(
    level: str = "info",
    fmt: str = "json",
    module_levels: str = "",
    access: AccessPolicy | None = None,
) -> None:
    """Root logging for the process. `module_levels`: "perpetuo.routing=debug,uvicorn=warning"."""
    global _listener
    if _listener is not None:
        _listener.stop()
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JSONFormatter() if fmt == "json" else TextFormatter())
    records: queue.SimpleQueue[logging.LogRecord] = queue.SimpleQueue()
    _listener = logging.handlers.QueueListener(records, handler, respect_handler_level=False)
    _listener.start()
    atexit.register(_listener.stop)
    root = logging.getLogger()
    root.handlers[:] = [logging.handlers.QueueHandler(records)]
    root.setLevel(level.upper())
    for name in ("uvicorn", "uvicorn.error"):
        logger = logging.getLogger(name)
        logger.handlers.clear()
        logger.propagate = True
    # perpetuo.access writes the request line (with ids and routing); uvicorn's would repeat it.
    uvicorn_access = logging.getLogger("uvicorn.access")
    uvicorn_access.handlers.clear()
    uvicorn_access.propagate = False
    for item in filter(None, (part.strip() for part in module_levels.split(","))):
        name, _, value = item.partition("=")
        logging.getLogger(name.strip()).setLevel(value.strip().upper())
    global _access_writer
    if _access_writer is not None:
        _access_writer.close()
    _access_writer = AccessWriter(sys.stderr, fmt, policy=access or AccessPolicy())


class AccessWriter:
    """Request lines, encoded on the spot and written in batches by a small thread: one write
    every `interval` seconds instead of a LogRecord, a queue hop and a write per request."""

    def __init__(
        self,
        stream: Any,
        fmt: str,
        interval: float = 0.1,
        policy: AccessPolicy | None = None,
        summary_every: float = 60.0,
    ) -> None:
        self._stream = stream
        self._json = fmt == "json"
        self.policy = policy or AccessPolicy()
        self._lines: deque[bytes] = deque()
        self._bytes = 0
        self._tokens = self.policy.max_per_second
        self._refilled = time.monotonic()
        self.skipped = 0  # sampled out, since start
        self.dropped = 0  # over the buffer budget, since start
        self._reported = (0, 0)
        self._summary_every = summary_every
        self._next_summary = time.monotonic() + summary_every
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(
            target=self._run, args=(interval,), daemon=True, name="access-log"
        )
        self._thread.start()
        atexit.register(self.close)

    def wanted(self, route: str, failed: bool) -> bool:
        """Whether this request gets a line: sampling per route, then the rate for successes."""
        rate = self.policy.routes.get(route)
        if rate == 0.0:
            return False
        if failed:
            return True
        if rate is not None and rate < 1.0 and random.random() >= rate:
            self.skipped += 1
            return False
        limit = self.policy.max_per_second
        if limit:
            now = time.monotonic()
            self._tokens = min(limit, self._tokens + (now - self._refilled) * limit)
            self._refilled = now
            if self._tokens < 1.0:
                self.skipped += 1
                return False
            self._tokens -= 1.0
        return True

    def write(self, message: str, fields: dict[str, Any]) -> None:
        now = dt.datetime.now(dt.UTC).isoformat(timespec="milliseconds")
        if self._json:
            entry = {
                "time": now,
                "level": "info",
                "logger": ACCESS.name,
                "message": message,
                **fields,
            }
            line = _encode(entry) + b"\n"
        else:
            extras = " ".join(f"{k}={v}" for k, v in fields.items() if v is not None)
            line = f"{now} INFO    {ACCESS.name}: {message} {extras}\n".encode()
        with self._lock:
            self._lines.append(line)
            self._bytes += len(line)
            while self._bytes > self.policy.buffer_bytes and self._lines:
                self._bytes -= len(self._lines.popleft())  # the oldest go first
                self.dropped += 1

    def _summary(self) -> None:
        """Once a minute, one line counting the lines skipped and dropped meanwhile."""
        skipped, dropped = self.skipped - self._reported[0], self.dropped - self._reported[1]
        self._reported = (self.skipped, self.dropped)
        if skipped or dropped:
            message = f"access log: {skipped} requests sampled out, {dropped} lines dropped"
            self.write(message, {"sampled_out": skipped, "dropped": dropped})

    def flush(self) -> None:
        if time.monotonic() >= self._next_summary:
            self._next_summary = time.monotonic() + self._summary_every
            self._summary()
        with self._lock:
            lines, self._lines, self._bytes = self._lines, deque(), 0
        if lines:
            buffer = getattr(self._stream, "buffer", None)
            try:
                if buffer is not None:
                    buffer.write(b"".join(lines))
                    buffer.flush()
                else:
                    self._stream.write(b"".join(lines).decode())
                    self._stream.flush()
            except (OSError, ValueError):
                pass  # a closed stream at exit: nothing to do

    def _run(self, interval: float) -> None:
        while not self._stop.wait(interval):
            self.flush()
        self.flush()

    def close(self) -> None:
        self._stop.set()
        if self._thread.is_alive() and self._thread is not threading.current_thread():
            self._thread.join(2)


_access_writer: AccessWriter | None = None


def access_counts() -> tuple[int, int]:
    """Access lines sampled out and dropped since start (for metrics)."""
    writer = _access_writer
    return (writer.skipped, writer.dropped) if writer is not None else (0, 0)


def access(ctx: RequestContext) -> None:
    """The request's line, if the access policy wants one."""
    writer = _access_writer
    if writer is None or not ACCESS.isEnabledFor(logging.INFO):
        return
    if not writer.wanted(ctx.endpoint, ctx.status >= 400 or ctx.error_code is not None):
        return
    principal = ctx.principal
    deployment = ctx.deployment
    usage = ctx.usage
    writer.write(
        f"{ctx.endpoint} {ctx.alias or '-'} {ctx.status}",
        {
            "request_id": ctx.request_id,
            "workspace_id": principal.workspace_id if principal else None,
            "key_id": principal.key_id if principal else None,
            "alias": ctx.alias,
            "provider": deployment.provider if deployment else None,
            "model": deployment.model if deployment else None,
            "status": ctx.status,
            "error": ctx.error_code,
            "stream": ctx.stream,
            "latency_ms": round(ctx.latency_ms, 2) if ctx.latency_ms is not None else None,
            "ttft_ms": round(ctx.ttft_ms, 2) if ctx.ttft_ms is not None else None,
            "attempts": len(ctx.trace.attempts),
            "prompt_tokens": usage.prompt_tokens if usage else None,
            "completion_tokens": usage.completion_tokens if usage else None,
        },
    )
