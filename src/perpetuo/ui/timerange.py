"""The time-range picker shared by the logs and usage pages: 24h, 7d, 30d or custom."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Literal

from perpetuo.control.errors import invalid
from perpetuo.store.timeutil import utcnow

PRESETS: dict[str, dt.timedelta] = {
    "1h": dt.timedelta(hours=1),
    "24h": dt.timedelta(hours=24),
    "7d": dt.timedelta(days=7),
    "30d": dt.timedelta(days=30),
}
LABELS = {"1h": "Last hour", "24h": "24 hours", "7d": "7 days", "30d": "30 days"}


@dataclass(frozen=True)
class TimeRange:
    key: str  # a preset, or "custom"
    since: dt.datetime
    until: dt.datetime

    @property
    def granularity(self) -> Literal["hour", "day"]:
        return "hour" if self.until - self.since <= dt.timedelta(days=7) else "day"

    @property
    def query(self) -> dict[str, str]:
        """The query parameters that select this range again."""
        if self.key != "custom":
            return {"range": self.key}
        return {"range": "custom", "since": _day(self.since), "until": _day(self.until)}


def _day(value: dt.datetime) -> str:
    return value.strftime("%Y-%m-%d")


def _parse_day(text: str, field: str) -> dt.datetime:
    try:
        return dt.datetime.strptime(text, "%Y-%m-%d").replace(tzinfo=dt.UTC)
    except ValueError:
        raise invalid("Dates are written YYYY-MM-DD.", field) from None


def parse_range(
    key: str | None, since: str | None, until: str | None, default: str = "24h"
) -> TimeRange:
    """A preset ends now; a custom range runs from the start of `since` to the end of
    `until` (whole UTC days)."""
    now = utcnow()
    if key == "custom" and since:
        start = _parse_day(since, "since")
        end = _parse_day(until, "until") + dt.timedelta(days=1) if until else now
        if start >= end:
            raise invalid("The start date must be before the end date.", "since")
        if end - start > dt.timedelta(days=400):
            raise invalid("A range can span at most 400 days.", "since")
        return TimeRange("custom", start, min(end, now + dt.timedelta(days=1)))
    key = key if key in PRESETS else default
    return TimeRange(key, now - PRESETS[key], now)
