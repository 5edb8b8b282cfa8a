"""/api/workspaces/{workspace_id}/billing: a workspace's plan, payments and settings, and the
Stripe pages to pay through. Mounted only when the server sells plans and credits."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from pydantic import BaseModel, ConfigDict, Field

from perpetuo.api.admin.deps import ActorDep
from perpetuo.api.admin.envelope import one
from perpetuo.api.admin.responses import WORKSPACE_ROLE, errors
from perpetuo.control.billing import (
    Billing,
    checkout,
    coupons,
    overview,
    plan_changes,
    recharge,
    referrals,
)
from perpetuo.control.billing.checkout import SubscribeRequest, TopUpRequest
from perpetuo.control.billing.coupons import RedeemRequest
from perpetuo.control.billing.plan_changes import PlanChange
from perpetuo.control.billing.recharge import AutoRecharge


def billing_of(request: Request) -> Billing:
    billing = request.app.state.plane.billing
    assert billing is not None, "billing routes are mounted only with billing on"
    return billing


BillingDep = Annotated[Billing, Depends(billing_of)]
STRIPE = errors(502)  # Stripe refused or could not be reached

router = APIRouter(
    prefix="/api/workspaces/{workspace_id}/billing", tags=["Billing"], responses=WORKSPACE_ROLE
)


class ReferralCode(BaseModel):
    model_config = ConfigDict(extra="forbid")

    code: str = Field(min_length=4, max_length=32)


@router.get("", summary="Plan, renewal, trial, balance and recharge settings (any member)")
async def get_billing(workspace_id: str, actor: ActorDep, billing: BillingDep) -> dict[str, Any]:
    return one(await overview.overview(billing, actor, workspace_id))


@router.post(
    "/checkout",
    status_code=201,
    summary="A Stripe Checkout page to subscribe to a plan (admins)",
    responses=errors(409) | STRIPE,
)
async def subscribe(
    workspace_id: str, body: SubscribeRequest, actor: ActorDep, billing: BillingDep
) -> dict[str, Any]:
    return one(
        await checkout.subscription_session(
            billing, actor, workspace_id, body.plan_id, body.interval
        )
    )


@router.post(
    "/topup",
    status_code=201,
    summary="A Stripe Checkout page to buy credit (admins)",
    responses=STRIPE,
)
async def top_up(
    workspace_id: str, body: TopUpRequest, actor: ActorDep, billing: BillingDep
) -> dict[str, Any]:
    return one(await checkout.topup_session(billing, actor, workspace_id, body.amount_usd))


@router.post(
    "/portal",
    status_code=201,
    summary="A Stripe customer-portal page: cards, invoices, cancellation (admins)",
    responses=STRIPE,
)
async def portal(workspace_id: str, actor: ActorDep, billing: BillingDep) -> dict[str, Any]:
    return one(await checkout.portal_session(billing, actor, workspace_id))


@router.post(
    "/plan",
    summary="Upgrade or downgrade, prorated by Stripe; a free plan cancels at period end",
    responses=errors(409) | STRIPE,
)
async def change_plan(
    workspace_id: str, body: PlanChange, actor: ActorDep, billing: BillingDep
) -> dict[str, Any]:
    return one(await plan_changes.change_plan(billing, actor, workspace_id, body))


@router.post(
    "/cancel",
    summary="Cancel the subscription when its period ends (admins)",
    responses=errors(409) | STRIPE,
)
async def cancel(workspace_id: str, actor: ActorDep, billing: BillingDep) -> dict[str, Any]:
    return one(await plan_changes.set_cancel(billing, actor, workspace_id, True))


@router.post(
    "/resume",
    summary="Keep a subscription that was to end at its period's end (admins)",
    responses=errors(409) | STRIPE,
)
async def resume(workspace_id: str, actor: ActorDep, billing: BillingDep) -> dict[str, Any]:
    return one(await plan_changes.set_cancel(billing, actor, workspace_id, False))


@router.put("/auto-recharge", summary="Automatic recharge: on or off, threshold, amount (admins)")
async def auto_recharge(
    workspace_id: str, body: AutoRecharge, actor: ActorDep, billing: BillingDep
) -> dict[str, Any]:
    return one(await recharge.configure(billing, actor, workspace_id, body))


@router.get(
    "/invoices",
    summary="Stripe invoices (with their hosted pages) and the payments credited (admins)",
    responses=STRIPE,
)
async def invoices(workspace_id: str, actor: ActorDep, billing: BillingDep) -> dict[str, Any]:
    return await overview.invoices(billing, actor, workspace_id)


@router.post(
    "/coupons",
    status_code=201,
    summary="Redeem a coupon: credits at once, or a discount on the plan (admins)",
    responses=errors(409) | STRIPE,
)
async def redeem(
    workspace_id: str, body: RedeemRequest, actor: ActorDep, billing: BillingDep
) -> dict[str, Any]:
    return one(await coupons.redeem(billing, actor, workspace_id, body.code))


@router.post(
    "/referral",
    status_code=201,
    summary="Name the referral code this workspace came with (admins, before its first payment)",
    responses=errors(409),
)
async def referral(
    workspace_id: str, body: ReferralCode, actor: ActorDep, billing: BillingDep
) -> dict[str, Any]:
    return one(await referrals.attach(billing, actor, workspace_id, body.code))
