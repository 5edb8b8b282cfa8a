"""Log lines that could repeat on every request or batch (a backlog, a failing disk, a
dependency that is away): at most once a period per kind, saying how many each stands for."""

from __future__ import annotations

import logging
import time
from typing import Any


class EveryMinute:
    """A log line at most once a minute per kind, saying how many it stands for."""

    def __init__(self, logger: logging.Logger, period: float = 60.0) -> None:
        self.logger = logger
        self.period = period
        self._last: dict[str, float] = {}
        self._count: dict[str, int] = {}

    def log(self, level: int, kind: str, message: str, *args: Any) -> None:
        self._count[kind] = self._count.get(kind, 0) + 1
        now = time.monotonic()
        if now - self._last.get(kind, -self.period) >= self.period:
            times = self._count.pop(kind)
            self._last[kind] = now
            suffix = f" ({times} times in the last minute)" if times > 1 else ""
            self.logger.log(level, message + suffix, *args)
