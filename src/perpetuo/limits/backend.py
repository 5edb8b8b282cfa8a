"""The interface between the engine and where counters live (memory or Redis).

The engine turns a request into a list of `Check`s: plain counter operations that know
nothing of keys, plans or dollars. A backend checks ALL of them and reserves them all, or
none (and says which refused), as one atomic step; then settles or releases what it reserved.

Three kinds of counter:
- RATE: a GCRA meter per minute (gcra.py); `amount` units are added on admission.
- WINDOW: a fixed-window total (`s`, settled) plus live holds (`h`): admits when
  s + h + amount <= limit. Each hold expires after `hold_ms` unless settled first, so a crashed
  request cannot keep its reservation forever. Counters that must survive restarts are
  created from a `seed` (read from the database) the first time they are missing.
- SLOTS: requests in flight (`limit` at most), each stale after `hold_ms`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from enum import IntEnum
from typing import NamedTuple, Protocol


class Kind(IntEnum):
    RATE = 1
    WINDOW = 2
    SLOTS = 3


UNLIMITED = -1  # a WINDOW that only counts (for a soft budget threshold without a hard one)
SEEDED_ELSEWHERE = None  # seed value: the counter starts at 0 when missing


# Checks and settlements are made for every request (several each): named tuples, which
# build in a quarter of a frozen dataclass's time, and are as immutable.
class Check(NamedTuple):
    kind: Kind
    key: str  # counter name, unique per scope, window and kind
    limit: int
    amount: int = 1
    ttl_ms: int = 0  # how long the counter lives after this touch
    hold_ms: int = 0  # WINDOW holds and SLOTS entries expire after this
    seedable: bool = False  # WINDOW: when missing, must start from `seed` (read from the store)
    seed: int | None = None
    corrected: bool = False  # RATE: settlement corrects it to the real amount (tokens)
    alerting: bool = False  # WINDOW: its settlements may fire a budget alert (never leased)

    @property
    def settled(self) -> bool:
        """Whether the request's settlement changes this counter (beyond freeing a slot)."""
        return self.kind is Kind.WINDOW or self.corrected


def slot_of(key: str) -> str:
    """The `{workspace}` hash tag of a counter's name: calls that share it share one Redis
    Cluster slot."""
    return key.partition("}")[0]


class Settlement(NamedTuple):
    kind: Kind
    key: str
    limit: int
    value: int  # RATE: correction in units (may be negative); WINDOW: the actual amount
    alert_at: int | None = None  # WINDOW: flag once when the settled total reaches this
    alert_ttl_ms: int = 0


@dataclass(slots=True)
class Reservation:
    """What a reserve call did. Nothing is reserved unless `admitted`."""

    missing: list[int] = field(default_factory=list)  # seedable checks whose counter is absent
    # (check index, wait ms, counter value found: meter level, window total or slots in use)
    refused: list[tuple[int, int, int]] = field(default_factory=list)
    states: list[tuple[int, int]] = field(default_factory=list)  # per check: remaining, reset ms
    leased: bool = False  # admitted on this instance's leases (leases.py), not in Redis itself

    @property
    def admitted(self) -> bool:
        return not self.missing and not self.refused


class BackendUnavailable(Exception):
    """The shared store could not be reached in time."""


class LimitBackend(Protocol):
    name: str

    async def start(self) -> None:
        """Get ready before the first request (connect, load scripts)."""
        ...

    async def reserve(self, checks: Sequence[Check], request_id: str, now_ms: int) -> Reservation:
        """Check every counter; reserve them all if all fit, else none."""
        ...

    async def settle(
        self, items: Sequence[Settlement], request_id: str, now_ms: int
    ) -> list[tuple[int, int]]:
        """Apply the real usage (SLOTS items are released). Returns (index, settled total)
        of the items whose alert threshold was crossed for the first time in their window."""
        ...

    async def add_to_window(self, key: str, delta: int) -> None:
        """Add `delta` to a WINDOW counter's settled total if the counter exists."""
        ...

    async def peek_window(self, key: str, now_ms: int) -> tuple[int, int] | None:
        """A WINDOW counter's (settled total, held by requests in flight), or None when the
        counter does not exist (never used, expired, or lost): read only, nothing changes."""
        ...

    async def aclose(self) -> None: ...
