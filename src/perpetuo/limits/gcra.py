"""Per-minute rate limits (requests and tokens) by GCRA, in exact integer arithmetic.

GCRA's virtual scheduling is kept here in its equivalent "meter" form: a level that rises by
the cost of each admitted request and drains at `limit` units per minute. A request of cost
c fits when level + c <= limit, so a burst of `limit` units is admitted at once from idle and
then `limit` per minute, evenly. Settling moves the level by the difference between the real
and the reserved cost, never below empty.

The level is kept in units x 60,000 with time in milliseconds, so draining is `elapsed_ms *
limit` with no fractions: the 100th of 100 requests is admitted exactly, not lost to float
rounding. The Redis script (lua.py) does the same arithmetic; both stay below 2^53, so Lua's
doubles are exact too (limits up to 10^9 per minute).
"""

from __future__ import annotations

from dataclasses import dataclass

PERIOD_MS = 60_000
NEVER = -1  # a wait for a request that can never fit: it costs more than the whole limit


@dataclass(slots=True)
class Meter:
    level: int = 0  # units x PERIOD_MS
    stamp: int = 0  # ms of the last update

    def drained(self, now_ms: int, limit: int) -> int:
        elapsed = now_ms - self.stamp
        if elapsed <= 0:
            return self.level  # clocks of several instances may disagree slightly
        if elapsed >= PERIOD_MS:
            return 0  # also keeps elapsed * limit small
        return max(0, self.level - elapsed * limit)


def wait_ms(level: int, cost: int, limit: int) -> int:
    """Milliseconds until `cost` more units fit (0: they fit now; NEVER: they never will)."""
    if cost > limit:
        return NEVER
    excess = level + cost * PERIOD_MS - limit * PERIOD_MS
    return 0 if excess <= 0 else -(-excess // limit)


def remaining(level: int, limit: int) -> int:
    """Whole units that would still fit now."""
    return max(0, (limit * PERIOD_MS - level) // PERIOD_MS)


def reset_ms(level: int, limit: int) -> int:
    """Milliseconds until the meter is empty again."""
    return -(-level // limit)


def settle_level(level: int, delta: int) -> int:
    """The level after correcting a reservation by `delta` units (negative: a refund)."""
    return max(0, level + delta * PERIOD_MS)
