"""Budget alerts: when spend crosses a soft threshold, tell someone, once per period.

The once-per-period flag lives with the counters (Redis SET NX, or memory), so with several
instances still exactly one alert is raised. Raising it is a log line, a counter, and the
listeners: the wiring adds the alert path (control/alerts/budget.py), which records it and
delivers it to the workspace's channels in the background. Listeners run on the event loop
and must not block: an alert never delays or fails the request that triggered it.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any

from perpetuo.limits.guard import LimitStats
from perpetuo.limits.planning import Planned

log = logging.getLogger("perpetuo.limits.alerts")

EVENT_TYPE = "budget.soft_threshold_reached"


def budget_event(
    planned: Planned,
    workspace_id: str | None,
    key_id: str | None,
    spent_hint: int | None,
    now: float,
) -> dict[str, Any]:
    window = planned.window
    return {
        "type": EVENT_TYPE,
        "workspace_id": workspace_id,
        "scope": planned.scope,
        "scope_id": planned.scope_id,
        "key_id": key_id if planned.scope == "key" else None,
        "period": window.period if window else "total",
        "period_start": window.start.isoformat() if window and window.start else None,
        "period_end": window.end.isoformat() if window and window.end else None,
        "threshold_usd": (planned.soft_micros or 0) / 1_000_000,
        "budget_usd": planned.limit / 1_000_000 if planned.limit >= 0 else None,
        "spent_usd": spent_hint / 1_000_000 if spent_hint is not None else None,
        "at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(now)),
    }


class AlertSender:
    def __init__(self, stats: LimitStats) -> None:
        self._stats = stats
        # Told of every alert (the wiring adds the alert path); each is called on the event
        # loop and must not block.
        self.listeners: list[Callable[[dict[str, Any]], None]] = []

    def fire(self, event: dict[str, Any]) -> None:
        self._stats.alerts_fired += 1
        log.warning(
            "budget alert: %s %s of workspace %s reached its soft threshold of $%.2f (%s)",
            event["scope"],
            event["scope_id"],
            event["workspace_id"],
            event["threshold_usd"],
            event["period"],
        )
        for listener in self.listeners:
            try:
                listener(event)
            except Exception as exc:  # a listener never fails the request that fired it
                self._stats.alerts_failed += 1
                log.warning("budget alert listener failed: %s", exc)
