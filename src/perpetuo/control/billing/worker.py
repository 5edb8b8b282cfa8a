"""Billing's background pass, on every instance (each step is claimed by a conditional
update, so instances never do the same work twice): automatic recharges and low-balance
notices, trial reminders and ends, and the end of a failed renewal's grace period."""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import logging
import random

from sqlalchemy import select, update

from perpetuo.control.billing import accounts, money, recharge
from perpetuo.control.billing.notices import trial_ending
from perpetuo.control.billing.service import Billing, Effects
from perpetuo.store.aio import AsyncConnection
from perpetuo.store.billing_tables import billing_accounts
from perpetuo.store.timeutil import utcnow

log = logging.getLogger("perpetuo.billing")


class BillingWorker:
    def __init__(self, billing: Billing) -> None:
        self.billing = billing
        self._task: asyncio.Task[None] | None = None
        self._poke = asyncio.Event()

    def start(self) -> None:
        self._task = asyncio.create_task(self._forever(), name="billing")

    def poke(self) -> None:
        """Run a pass now (tests; a payment that may have crossed a threshold)."""
        self._poke.set()

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    async def _forever(self) -> None:
        while True:
            try:
                await run_once(self.billing)
            except Exception as exc:
                log.warning("billing pass failed: %s", exc)
            with contextlib.suppress(TimeoutError):
                interval = self.billing.worker_interval * random.uniform(0.9, 1.1)
                await asyncio.wait_for(self._poke.wait(), interval)
            self._poke.clear()


async def run_once(billing: Billing, now: dt.datetime | None = None) -> dict[str, int]:
    now = now or utcnow()
    done = await recharge.check(billing)
    done["trial_reminders"] = await remind_trials(billing, now)
    done["trials_ended"] = await end_trials(billing, now)
    done["downgraded"] = await end_grace(billing, now)
    return done


async def remind_trials(billing: Billing, now: dt.datetime) -> int:
    days = billing.config.trial.remind_days_before
    c = billing_accounts.c
    sent = 0
    async with billing.db.connect() as conn:
        due = (
            await conn.execute(
                select(c.workspace_id, c.trial_ends_at).where(
                    c.trial_status == "active",
                    c.trial_reminded.is_(False),
                    c.trial_ends_at <= now + dt.timedelta(days=days),
                    c.trial_ends_at > now,
                )
            )
        ).all()
    for row in due:
        async with billing.db.begin() as conn:
            claimed = await conn.execute(
                update(billing_accounts)
                .where(c.workspace_id == row.workspace_id, c.trial_reminded.is_(False))
                .values(trial_reminded=True)
            )
            if claimed.rowcount == 1:
                ends_on = "on " + row.trial_ends_at.strftime("%Y-%m-%d")
                await trial_ending(
                    conn, billing, row.workspace_id, ends_on, row.trial_ends_at.isoformat()
                )
                sent += 1
    return sent


async def end_trials(billing: Billing, now: dt.datetime) -> int:
    """Card-less trials past their end: unspent trial credit is taken back, and the
    workspace goes to the free plan. (A trial through Checkout ends at Stripe.)"""
    c = billing_accounts.c
    ended = 0
    async with billing.db.connect() as conn:
        due = (
            await conn.scalars(
                select(c.workspace_id).where(
                    c.trial_status == "active",
                    c.trial_ends_at <= now,
                    c.subscription_id.is_(None),
                )
            )
        ).all()
    grant = round(billing.config.trial.credits_usd * 1_000_000)
    for workspace_id in due:
        effects = Effects()
        async with billing.db.begin() as conn:
            claimed = await conn.execute(
                update(billing_accounts)
                .where(c.workspace_id == workspace_id, c.trial_status == "active")
                .values(trial_status="ended")
            )
            if claimed.rowcount != 1:
                continue
            left = max(0, await money.balance(conn, workspace_id))
            await money.add_entry(
                conn,
                effects.moves,
                workspace_id,
                "expiry",
                -min(grant, left),
                f"trial-expiry:{workspace_id}",
                "unspent trial credit",
            )
            await _to_free_plan(conn, billing, effects, workspace_id)
        await billing.commit(effects)
        ended += 1
    return ended


async def end_grace(billing: Billing, now: dt.datetime) -> int:
    """A renewal unpaid for `grace_days`: the workspace goes to the free plan (its paid plan
    comes back with the next paid invoice)."""
    c = billing_accounts.c
    cutoff = now - dt.timedelta(days=billing.config.grace_days)
    moved = 0
    async with billing.db.connect() as conn:
        due = (await conn.scalars(select(c.workspace_id).where(c.past_due_since <= cutoff))).all()
    for workspace_id in due:
        effects = Effects()
        async with billing.db.begin() as conn:
            await _to_free_plan(conn, billing, effects, workspace_id)
        await billing.commit(effects)
        moved += len(effects.workspaces)  # 0 once it is on the free plan already
    return moved


async def _to_free_plan(
    conn: AsyncConnection, billing: Billing, effects: Effects, workspace_id: str
) -> None:
    plan = billing.catalog.plan(billing.config.free_plan)
    if await accounts.apply_plan(conn, billing.config, workspace_id, plan):
        effects.workspaces.add(workspace_id)
