"""Fixed UTC calendar windows for quotas and budgets: day, ISO week, month, or all time.

A counter's name carries its window's id, so a new day starts a new counter and the old one
simply expires; nothing has to be reset at midnight.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

TOTAL_TTL_SECONDS = 7 * 24 * 3600  # an all-time counter idle this long is re-read from the store
SLACK_SECONDS = 3600  # a window's counter outlives its end, for requests settling late


@dataclass(frozen=True, slots=True)
class Window:
    period: str  # daily | weekly | monthly | total
    id: str  # part of counter names: d20250131, w2025-05, m202501, total
    start: dt.datetime | None  # None: all time
    end: dt.datetime | None

    def seconds_left(self, now: float) -> float | None:
        return None if self.end is None else max(0.0, self.end.timestamp() - now)

    @property
    def expiry_ms(self) -> int | None:
        """When a calendar window's counter may go (its end plus slack); None for all time."""
        return None if self.end is None else int((self.end.timestamp() + SLACK_SECONDS) * 1000)

    def ttl_ms(self, now: float) -> int:
        left = self.seconds_left(now)
        seconds = TOTAL_TTL_SECONDS if left is None else left + SLACK_SECONDS
        return int(seconds * 1000)


_cache: dict[tuple[str, int], Window] = {}


def window_of(period: str, now: float) -> Window:
    """The window of `period` holding `now` (every request asks: cached per UTC day, which
    decides every period's window; Unix time has no leap seconds, so days are 86,400 s)."""
    key = (period, int(now // 86_400))
    window = _cache.get(key)
    if window is None:
        if len(_cache) > 64:
            _cache.clear()
        window = _cache[key] = _window_of(period, now)
    return window


def _window_of(period: str, now: float) -> Window:
    moment = dt.datetime.fromtimestamp(now, dt.UTC)
    midnight = moment.replace(hour=0, minute=0, second=0, microsecond=0)
    if period == "daily":
        return Window(period, f"d{midnight:%Y%m%d}", midnight, midnight + dt.timedelta(days=1))
    if period == "weekly":
        start = midnight - dt.timedelta(days=midnight.weekday())  # Monday, as ISO weeks start
        year, week, _ = start.isocalendar()
        return Window(period, f"w{year}-{week:02d}", start, start + dt.timedelta(days=7))
    if period == "monthly":
        start = midnight.replace(day=1)
        following = (start + dt.timedelta(days=32)).replace(day=1)
        return Window(period, f"m{start:%Y%m}", start, following)
    if period == "total":
        return Window(period, "total", None, None)
    raise ValueError(f"unknown period {period!r}")
