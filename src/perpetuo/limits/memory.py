"""Counters in this process: exact for one instance, and the fallback when Redis is away.

Every operation runs without awaiting, so on one event loop a reserve is atomic: the checks
and the writes of one request cannot interleave with another's. Expired counters are swept
now and then, so idle keys and windows do not accumulate.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Protocol, TypeVar

from perpetuo.limits import gcra
from perpetuo.limits.backend import UNLIMITED, Check, Kind, Reservation, Settlement

SWEEP_EVERY_MS = 60_000


class _Expiring(Protocol):
    expires: int


_E = TypeVar("_E", bound=_Expiring)


@dataclass(slots=True)
class _Rate:
    meter: gcra.Meter
    expires: int


@dataclass(slots=True)
class _Window:
    settled: int
    expires: int
    held: int = 0
    holds: dict[str, tuple[int, int]] = field(default_factory=dict)  # id -> (amount, expiry)

    def purge(self, now_ms: int) -> None:
        # Holds are inserted with the same lifetime, so the oldest come first.
        while self.holds:
            request_id, (amount, expiry) = next(iter(self.holds.items()))
            if expiry > now_ms:
                break
            del self.holds[request_id]
            self.held -= amount


@dataclass(slots=True)
class _Slots:
    started: dict[str, int] = field(default_factory=dict)  # request id -> ms
    expires: int = 0

    def purge(self, now_ms: int, hold_ms: int) -> None:
        stale = [rid for rid, at in self.started.items() if at <= now_ms - hold_ms]
        for request_id in stale:
            del self.started[request_id]


class MemoryBackend:
    name = "memory"

    def __init__(self) -> None:
        self._rates: dict[str, _Rate] = {}
        self._windows: dict[str, _Window] = {}
        self._slots: dict[str, _Slots] = {}
        self._flags: dict[str, int] = {}  # alert flags -> expiry
        self._next_sweep = 0

    async def start(self) -> None:
        return None

    async def reserve(self, checks: Sequence[Check], request_id: str, now_ms: int) -> Reservation:
        self._maybe_sweep(now_ms)
        result = Reservation()
        found: list[int] = []  # per check: meter level, window total, or slots in use
        for index, check in enumerate(checks):
            if check.kind is Kind.RATE:
                rate = self._live(self._rates, check.key, now_ms)
                level = rate.meter.drained(now_ms, check.limit) if rate else 0
                wait = gcra.wait_ms(level, check.amount, check.limit)
                if wait:
                    result.refused.append((index, wait, level))
                found.append(level)
            elif check.kind is Kind.WINDOW:
                window = self._live(self._windows, check.key, now_ms)
                if window is None:
                    if check.seedable and check.seed is None:
                        result.missing.append(index)
                    total = check.seed or 0
                else:
                    window.purge(now_ms)
                    total = window.settled + window.held
                if check.limit != UNLIMITED and total + check.amount > check.limit:
                    result.refused.append((index, 0, total))
                found.append(total)
            else:
                slots = self._live(self._slots, check.key, now_ms)
                if slots is not None:
                    slots.purge(now_ms, check.hold_ms)
                in_use = len(slots.started) if slots else 0
                if in_use >= check.limit:
                    result.refused.append((index, 0, in_use))
                found.append(in_use)
        if result.missing or result.refused:
            return result
        for check, value in zip(checks, found, strict=True):
            result.states.append(self._take(check, value, request_id, now_ms))
        return result

    def _take(self, check: Check, value: int, request_id: str, now_ms: int) -> tuple[int, int]:
        if check.kind is Kind.RATE:
            level = value + check.amount * gcra.PERIOD_MS
            reset = gcra.reset_ms(level, check.limit)
            self._rates[check.key] = _Rate(gcra.Meter(level, now_ms), now_ms + reset + 1000)
            return gcra.remaining(level, check.limit), reset
        if check.kind is Kind.WINDOW:
            window = self._windows.get(check.key)
            if window is None or window.expires <= now_ms:
                window = self._windows[check.key] = _Window(check.seed or 0, 0)
            window.expires = now_ms + check.ttl_ms
            window.held += check.amount
            window.holds[request_id] = (check.amount, now_ms + check.hold_ms)
            left = check.limit - window.settled - window.held
            return (left if check.limit != UNLIMITED else UNLIMITED), 0
        slots = self._slots.setdefault(check.key, _Slots())
        slots.started[request_id] = now_ms
        slots.expires = now_ms + check.hold_ms
        return check.limit - value - 1, 0

    async def settle(
        self, items: Sequence[Settlement], request_id: str, now_ms: int
    ) -> list[tuple[int, int]]:
        fired: list[tuple[int, int]] = []
        for index, item in enumerate(items):
            if item.kind is Kind.RATE:
                rate = self._live(self._rates, item.key, now_ms)
                if rate is None and item.value <= 0:
                    continue  # already drained: nothing to refund
                level = rate.meter.drained(now_ms, item.limit) if rate else 0
                level = gcra.settle_level(level, item.value)
                expires = now_ms + gcra.reset_ms(level, item.limit) + 1000
                self._rates[item.key] = _Rate(gcra.Meter(level, now_ms), expires)
            elif item.kind is Kind.WINDOW:
                window = self._live(self._windows, item.key, now_ms)
                if window is None:
                    continue  # gone (expired): the store's history has this request
                hold = window.holds.pop(request_id, None)
                if hold is not None:
                    window.held -= hold[0]
                window.settled += item.value
                if item.alert_at is not None and window.settled >= item.alert_at:
                    flag = item.key + ":alerted"
                    if self._flags.get(flag, 0) <= now_ms:
                        self._flags[flag] = now_ms + item.alert_ttl_ms
                        fired.append((index, window.settled))
            else:
                slots = self._slots.get(item.key)
                if slots is not None:
                    slots.started.pop(request_id, None)
        return fired

    async def add_to_window(self, key: str, delta: int) -> None:
        window = self._windows.get(key)
        if window is not None:
            window.settled += delta

    async def peek_window(self, key: str, now_ms: int) -> tuple[int, int] | None:
        window = self._live(self._windows, key, now_ms)
        if window is None:
            return None
        window.purge(now_ms)
        return window.settled, window.held

    def replace_settled(self, key: str, settled: int) -> None:
        """Set a WINDOW counter's settled total (refreshed from the store), holds kept."""
        window = self._windows.get(key)
        if window is not None:
            window.settled = settled

    async def aclose(self) -> None:
        self._rates.clear()
        self._windows.clear()
        self._slots.clear()
        self._flags.clear()

    @staticmethod
    def _live(table: dict[str, _E], key: str, now_ms: int) -> _E | None:
        entry = table.get(key)
        if entry is not None and entry.expires <= now_ms:
            del table[key]
            return None
        return entry

    def _maybe_sweep(self, now_ms: int) -> None:
        if now_ms < self._next_sweep:
            return
        self._next_sweep = now_ms + SWEEP_EVERY_MS
        _drop_expired(self._rates, now_ms)
        _drop_expired(self._windows, now_ms)
        _drop_expired(self._slots, now_ms)
        for flag in [f for f, expiry in self._flags.items() if expiry <= now_ms]:
            del self._flags[flag]

    def __len__(self) -> int:
        return len(self._rates) + len(self._windows) + len(self._slots)


def _drop_expired(table: dict[str, _E], now_ms: int) -> None:
    for key in [k for k, entry in table.items() if entry.expires <= now_ms]:
        del table[key]
