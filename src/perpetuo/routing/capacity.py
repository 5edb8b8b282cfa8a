"""Per-deployment request and token budgets per minute (`rpm`, `tpm`).

The counter sits behind a small interface so a shared backend (Redis, for several gateway
instances) can replace the in-process one. `max_parallel` is checked against the in-flight
count in DeploymentHealth instead: it is a property of this process's connections.
"""

from __future__ import annotations

from typing import Protocol

_SECONDS = 60


class CapacityCounter(Protocol):
    def wait_time(
        self, key: str, rpm: int | None, tpm: int | None, tokens: int, now: float
    ) -> float:
        """Seconds until one more request of `tokens` fits both limits (0: it fits now)."""
        ...

    def admit(self, key: str, rpm: int | None, tpm: int | None, tokens: int, now: float) -> float:
        """Count the request and return 0 if it fits; else count nothing and return the wait."""
        ...

    def adjust(self, key: str, tokens: int, now: float) -> None:
        """Correct the tokens counted for an admitted request once its real usage is known."""
        ...


class _MinuteWindow:
    """Requests and tokens in the last 60 seconds, in one-second buckets with running sums."""

    __slots__ = ("last", "requests", "stamps", "tokens", "total_requests", "total_tokens")

    def __init__(self, now: float) -> None:
        self.requests = [0] * _SECONDS
        self.tokens = [0] * _SECONDS
        self.total_requests = 0
        self.total_tokens = 0
        self.last = int(now)

    def advance(self, now: float) -> None:
        second = int(now)
        last = self.last
        if second <= last:
            return
        for s in range(last + 1, last + 1 + min(second - last, _SECONDS)):
            i = s % _SECONDS
            self.total_requests -= self.requests[i]
            self.total_tokens -= self.tokens[i]
            self.requests[i] = 0
            self.tokens[i] = 0
        self.last = second

    def wait_time(self, rpm: int | None, tpm: int | None, tokens: int, now: float) -> float:
        self.advance(now)
        excess_requests = self.total_requests + 1 - rpm if rpm is not None else 0
        excess_tokens = self.total_tokens + tokens - tpm if tpm is not None else 0
        if excess_requests <= 0 and excess_tokens <= 0:
            return 0.0
        if tpm is not None and tokens > tpm:
            return float(_SECONDS)  # never fits: say "a minute", the longest honest answer
        # Walk the buckets oldest first until enough has expired.
        freed_requests = freed_tokens = 0
        for s in range(self.last - _SECONDS + 1, self.last + 1):
            i = s % _SECONDS
            freed_requests += self.requests[i]
            freed_tokens += self.tokens[i]
            if freed_requests >= excess_requests and freed_tokens >= excess_tokens:
                return max(0.001, s + _SECONDS - now)
        return float(_SECONDS)

    def add(self, requests: int, tokens: int) -> None:
        i = self.last % _SECONDS
        self.requests[i] += requests
        self.tokens[i] += tokens
        self.total_requests += requests
        self.total_tokens += tokens


class LocalCapacityCounter:
    """The in-process CapacityCounter: exact per second, for one gateway process."""

    def __init__(self) -> None:
        self._windows: dict[str, _MinuteWindow] = {}

    def _window(self, key: str, now: float) -> _MinuteWindow:
        window = self._windows.get(key)
        if window is None:
            window = self._windows[key] = _MinuteWindow(now)
        return window

    def wait_time(
        self, key: str, rpm: int | None, tpm: int | None, tokens: int, now: float
    ) -> float:
        return self._window(key, now).wait_time(rpm, tpm, tokens, now)

    def admit(self, key: str, rpm: int | None, tpm: int | None, tokens: int, now: float) -> float:
        window = self._window(key, now)
        wait = window.wait_time(rpm, tpm, tokens, now)
        if wait == 0.0:
            window.add(1, tokens)
        return wait

    def adjust(self, key: str, tokens: int, now: float) -> None:
        window = self._window(key, now)
        window.advance(now)
        window.add(0, tokens)

    def usage(self, key: str, now: float) -> tuple[int, int]:
        """(requests, tokens) counted in the last minute, for the health detail."""
        window = self._windows.get(key)
        if window is None:
            return 0, 0
        window.advance(now)
        return window.total_requests, window.total_tokens
