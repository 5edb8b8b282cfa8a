"""The alerting background work of one instance: evaluate the rules now and then, deliver
what is due. Every instance runs one; the database keeps them from doubling anything.

Evaluation runs every `interval` seconds off the request path: it reads routing state from
memory and the rest from the database, records what it finds (state.py), then resolves
alerts nobody has seen for `grace` seconds. Delivery looks for due rows every
`poll_interval` seconds, or at once when this instance recorded an event.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import logging
import os
import random
import secrets
import socket
from collections.abc import Callable
from typing import Any

from sqlalchemy import select

from perpetuo.control.alerts.budget import budget_listener
from perpetuo.control.alerts.conditions import Sources, evaluate
from perpetuo.control.alerts.delivery import Deliverer, DeliveryPolicy
from perpetuo.control.alerts.rules import EVENT_KINDS
from perpetuo.control.alerts.state import observe, sweep
from perpetuo.control.plane import ControlPlane
from perpetuo.store.alert_tables import alert_rules
from perpetuo.store.timeutil import utcnow
from perpetuo.transport.client import HTTPClient

log = logging.getLogger("perpetuo.alerts")

BATCH = 20


class AlertService:
    def __init__(
        self,
        plane: ControlPlane,
        http: HTTPClient | None,
        *,
        interval: float = 60.0,
        poll_interval: float = 2.0,
        policy: DeliveryPolicy | None = None,
        sources: Sources | None = None,
        clock: Callable[[], dt.datetime] = utcnow,
    ) -> None:
        self.plane = plane
        self.interval = interval
        self.poll_interval = poll_interval
        # Instances evaluate at their own moments: twice the interval and a half without
        # anyone seeing the condition means it is over.
        self.grace = interval * 2.5
        self.sources = sources or Sources(plane.db)
        self.deliverer = Deliverer(plane, http, policy or DeliveryPolicy())
        self.clock = clock
        self.sender = f"{socket.gethostname()[:30]}:{os.getpid()}:{secrets.token_hex(4)}"
        self.budget_listener = budget_listener(plane, self.poke)
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    # -- evaluation --------------------------------------------------------------------------

    async def evaluate_once(self, now: dt.datetime | None = None) -> list[str]:
        """One pass over every enabled rule; the ids of the events this instance recorded."""
        now = now or self.clock()
        async with self.plane.db.connect() as conn:
            rules = (await conn.execute(select(alert_rules).where(alert_rules.c.enabled))).all()
        recorded: list[str] = []
        for rule in rules:
            if rule.kind in EVENT_KINDS:
                continue
            try:
                found = await evaluate(rule, self.sources, now)
                for seen in found:
                    async with self.plane.db.begin() as conn:
                        if (event_id := await observe(conn, rule, seen, now)) is not None:
                            recorded.append(event_id)
            except Exception as exc:  # one broken rule never stops the others
                log.warning("alert rule %s (%s) not evaluated: %r", rule.id, rule.kind, exc)
        if rules:
            async with self.plane.db.begin() as conn:
                recorded += await sweep(conn, {r.id: r for r in rules}, now, self.grace)
        if recorded:
            self.poke()
        return recorded

    # -- delivery ----------------------------------------------------------------------------

    async def deliver_due(self) -> int:
        """Claim and attempt one batch of due deliveries; how many were claimed."""
        rows = await self.deliverer.claim(self.sender, BATCH)
        for row in rows:
            await self.deliverer.deliver(row, self.sender)
        return len(rows)

    def poke(self) -> None:
        """Something was recorded here: look at the queue now (after its commit)."""
        with contextlib.suppress(RuntimeError):  # no running loop: the next poll finds it
            asyncio.get_running_loop().call_soon(self._wake.set)

    # -- lifecycle ---------------------------------------------------------------------------

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name="alerts")

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        # Instances started together spread their evaluations over the interval.
        next_evaluation = loop.time() + random.uniform(0, self.interval)
        while True:
            claimed = 0
            try:
                if loop.time() >= next_evaluation:
                    next_evaluation = loop.time() + self.interval
                    await self.evaluate_once()
                claimed = await self.deliver_due()
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # the database is away: try again at the next tick
                log.warning("alerts pass failed: %s", exc)
            if claimed >= BATCH:
                continue
            wait = min(self.poll_interval, max(0.0, next_evaluation - loop.time()))
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), wait)
            self._wake.clear()

    async def aclose(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        pending: set[Any] = self.budget_listener.tasks  # type: ignore[attr-defined]
        if pending:
            await asyncio.gather(*pending, return_exceptions=True)
