"""Event-loop lag: how late the loop runs a callback that was due, sampled a few times a second.

Every request in a worker shares one event loop, so anything that holds it (a long
computation, a blocking call, a garbage-collection pass, another thread keeping the GIL)
delays every request in flight at once: the tail of the latency distribution. The monitor
asks the loop to call it back after `interval` and records how much later than that it ran.
A timer callback rather than a task: no coroutine, no task object, one clock read per tick.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

INTERVAL = 0.1  # seconds between samples: 10 clock reads a second, nothing measurable


class LoopLagMonitor:
    """Calls `observe(lag_seconds)` once per tick while started; `worst` keeps the largest lag
    seen since the last `take_worst()` (for tools that sample it)."""

    def __init__(self, observe: Callable[[float], None], interval: float = INTERVAL) -> None:
        self.observe = observe
        self.interval = interval
        self.worst = 0.0
        self._due = 0.0
        self._handle: asyncio.TimerHandle | None = None

    def start(self) -> LoopLagMonitor:
        """Start sampling on the running loop."""
        if self._handle is None:
            self._schedule(asyncio.get_running_loop())
        return self

    def stop(self) -> None:
        if self._handle is not None:
            self._handle.cancel()
            self._handle = None

    def take_worst(self) -> float:
        worst, self.worst = self.worst, 0.0
        return worst

    def _schedule(self, loop: asyncio.AbstractEventLoop) -> None:
        # perf_counter, not loop.time(): uvloop's clock only has millisecond resolution.
        self._due = time.perf_counter() + self.interval
        self._handle = loop.call_later(self.interval, self._tick, loop)

    def _tick(self, loop: asyncio.AbstractEventLoop) -> None:
        # The loop rounds timers to the millisecond (uvloop), so a tick may also come early.
        lag = max(0.0, time.perf_counter() - self._due)
        if lag > self.worst:
            self.worst = lag
        try:
            self.observe(lag)
        finally:
            self._schedule(loop)
