"""Trials: one per person, per workspace and per card, claimed atomically.

Without a card (the default) a trial grants `trial.credits_usd` and the trial plan's limits
for `trial.days`; when it ends, credit it left unspent is taken back and the workspace goes to
the free plan. With `trial.require_card` (or when a paid plan is named) the trial is a
Stripe subscription in its trial period, started through Checkout: when it ends Stripe bills
the plan chosen there, or the workspace goes to the free plan if that payment fails.

Claims are rows of `trial_claims` keyed `user:<id>`, `workspace:<id>` and `card:<fingerprint>`:
the primary key makes a second claim of any of them fail, on every engine, however many
requests race. A card that already had a trial ends the new subscription's trial at once
(Stripe then bills it).
"""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING, Any, Literal

from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from perpetuo.control import audit
from perpetuo.control.access import require_role
from perpetuo.control.actor import Actor, Role
from perpetuo.control.billing import accounts, money
from perpetuo.control.billing.checkout import subscription_session
from perpetuo.control.billing.service import Billing, Effects
from perpetuo.control.errors import conflict, forbidden
from perpetuo.store.aio import AsyncConnection
from perpetuo.store.billing_tables import trial_claims
from perpetuo.store.timeutil import iso, utcnow

if TYPE_CHECKING:
    from perpetuo.control.billing.events import Context


class TrialStart(BaseModel):
    model_config = ConfigDict(extra="forbid")

    workspace_id: str = Field(max_length=40)
    plan_id: str | None = Field(
        default=None, max_length=64, description="A paid plan to trial (needs a card)"
    )
    interval: Literal["month", "year"] = "month"


async def _claim(conn: AsyncConnection, subject: str, workspace_id: str) -> bool:
    try:
        async with conn.begin_nested():
            await conn.execute(
                trial_claims.insert().values(
                    subject=subject[:120], workspace_id=workspace_id, created_at=utcnow()
                )
            )
        return True
    except IntegrityError:
        return False


async def _claimed(conn: AsyncConnection, subjects: list[str]) -> bool:
    found = await conn.scalar(
        select(trial_claims.c.subject).where(trial_claims.c.subject.in_(subjects)).limit(1)
    )
    return found is not None


def _subjects(actor: Actor, workspace_id: str) -> list[str]:
    subjects = [f"workspace:{workspace_id}"]
    if actor.user_id:
        subjects.append(f"user:{actor.user_id}")
    return subjects


async def start(billing: Billing, actor: Actor, spec: TrialStart) -> dict[str, Any]:
    cfg = billing.config.trial
    if not cfg.enabled:
        raise forbidden("Trials are not offered on this server.")
    workspace_id = spec.workspace_id
    async with billing.db.connect() as conn:
        await require_role(conn, actor, workspace_id, Role.ADMIN)
        if await _claimed(conn, _subjects(actor, workspace_id)):
            raise conflict("A trial was used already by this workspace or this account.")
    if cfg.require_card or spec.plan_id is not None:
        plan_id = spec.plan_id or cfg.plan
        if plan_id is None:
            raise forbidden("This server's trials need a plan to be chosen.")
        session = await subscription_session(
            billing, actor, workspace_id, plan_id, spec.interval, trial_days=cfg.days
        )
        return {**await status(billing, actor, workspace_id), "checkout_url": session["url"]}
    effects = Effects()
    ends = utcnow() + dt.timedelta(days=cfg.days)
    async with billing.db.begin() as conn:
        for subject in _subjects(actor, workspace_id):
            if not await _claim(conn, subject, workspace_id):
                raise conflict("A trial was used already by this workspace or this account.")
        await accounts.account(conn, workspace_id)
        await accounts.save(
            conn,
            workspace_id,
            trial_status="active",
            trial_plan_id=cfg.plan,
            trial_ends_at=ends,
            trial_reminded=False,
        )
        micros = round(cfg.credits_usd * 1_000_000)
        await money.add_entry(
            conn, effects.moves, workspace_id, "trial", micros, f"trial:{workspace_id}", "trial"
        )
        plan = billing.catalog.plan(cfg.plan)
        if plan is not None:
            if await accounts.apply_plan(conn, billing.config, workspace_id, plan):
                effects.workspaces.add(workspace_id)
        elif await accounts.require_credits(conn, workspace_id):
            effects.workspaces.add(workspace_id)
        await audit.record(
            conn,
            actor,
            "billing.trial_start",
            workspace_id=workspace_id,
            target_type="trial",
            target_id=workspace_id,
            after={"plan": cfg.plan, "ends_at": iso(ends), "credits_usd": cfg.credits_usd},
        )
    await billing.commit(effects)
    return await status(billing, actor, workspace_id)


async def status(billing: Billing, actor: Actor, workspace_id: str) -> dict[str, Any]:
    cfg = billing.config.trial
    async with billing.db.begin() as conn:
        await require_role(conn, actor, workspace_id, Role.VIEWER)
        acc = await accounts.account(conn, workspace_id)
        used = await _claimed(conn, _subjects(actor, workspace_id))
    ends = acc.trial_ends_at
    left = max(0.0, (ends - utcnow()).total_seconds() / 86400) if ends else None
    return {
        "object": "trial",
        "workspace_id": workspace_id,
        "offered": cfg.enabled,
        "status": acc.trial_status or "none",
        "eligible": cfg.enabled and not used and acc.trial_status is None,
        "plan_id": acc.trial_plan_id or cfg.plan,
        "ends_at": iso(ends),
        "days_left": round(left, 2) if left is not None else None,
        "days": cfg.days,
        "credits_usd": cfg.credits_usd,
        "requires_card": cfg.require_card,
    }


async def claim_card(
    ctx: Context, workspace_id: str, sub: dict[str, Any], fingerprint: str | None
) -> None:
    """A subscription began its trial through Checkout: claim its person, workspace and card;
    if any had a trial before, the trial ends now and Stripe bills the plan."""
    user_id = (sub.get("metadata") or {}).get("user_id")
    subjects = [f"workspace:{workspace_id}"]
    if user_id:
        subjects.append(f"user:{user_id}")
    if fingerprint:
        subjects.append(f"card:{fingerprint}")
    fresh = [await _claim(ctx.conn, subject, workspace_id) for subject in subjects]
    if all(fresh):
        return
    await accounts.save(ctx.conn, workspace_id, trial_status="ended")
    sub_id = sub["id"]

    async def end_trial() -> None:
        await ctx.billing.stripe.update_subscription(sub_id, {"trial_end": "now"})

    ctx.effects.later.append(end_trial)
