"""Budget alerts: when spend crosses a soft threshold, tell someone, once per period.

The once-per-period flag lives with the counters (Redis SET NX, or memory), so with several
instances still exactly one alert goes out. Delivery is a log line, a counter, the listeners
(mail to the workspace's admins, when mail is configured), and (when the workspace names one)
an HTTP POST of a JSON event, sent in the background with short
timeouts: an alert never delays or fails the request that triggered it.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit

from perpetuo.limits.guard import LimitStats
from perpetuo.limits.planning import Planned
from perpetuo.transport.client import HTTPClient
from perpetuo.transport.egress import EgressPolicy
from perpetuo.transport.url import URL, Timeouts

log = logging.getLogger("perpetuo.limits.alerts")

WEBHOOK_TIMEOUTS = Timeouts(connect=2.0, first_byte=3.0, read=3.0, total=5.0)
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
    def __init__(
        self, http: HTTPClient | None, stats: LimitStats, egress: EgressPolicy | None = None
    ) -> None:
        self._http = http
        self._stats = stats
        # Webhook URLs are tenant-supplied: always checked (the wiring sets the operator's).
        self.egress = egress or EgressPolicy()
        self._tasks: set[asyncio.Task[None]] = set()
        # Told of every alert too (the wiring adds the mail to workspace admins); each is
        # called on the event loop and must not block.
        self.listeners: list[Callable[[dict[str, Any]], None]] = []

    def fire(self, event: dict[str, Any], webhook_url: str | None) -> None:
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
                log.warning("budget alert listener failed: %s", exc)
        if webhook_url and self._http is not None:
            task = asyncio.create_task(self._post(webhook_url, event))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    async def _post(self, url: str, event: dict[str, Any]) -> None:
        assert self._http is not None
        body = json.dumps(event).encode()
        headers = [("content-type", "application/json"), ("user-agent", "perpetuo-alerts")]
        try:
            self.egress.check_url(url)
            target = URL.parse(url)
            response = await self._http.request(
                "POST", target, headers, body, WEBHOOK_TIMEOUTS, egress=self.egress
            )
            await response.read()
            if response.status >= 300:
                raise RuntimeError(f"HTTP {response.status}")
        except Exception as exc:  # delivery is best effort; the log line above remains
            self._stats.alerts_failed += 1
            # The host only: webhook URLs often carry a secret in their path.
            host = urlsplit(url).hostname or "?"
            log.warning("budget alert webhook to %s failed: %s", host, exc)

    async def drain(self, within: float) -> bool:
        """Wait for deliveries in flight; True if they all finished in time."""
        if not self._tasks:
            return True
        _, pending = await asyncio.wait(set(self._tasks), timeout=within)
        return not pending

    async def aclose(self, grace: float = 1.0) -> None:
        """Let deliveries in flight finish briefly, then cancel the rest."""
        await self.drain(grace)
        for task in list(self._tasks):
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
