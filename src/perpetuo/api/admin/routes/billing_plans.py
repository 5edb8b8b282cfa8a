"""Billing routes without a workspace in their path: the plan catalog, trials (the
`/api/trials` paths are a contract clients use), the caller's referral code, coupons
(platform administrators) and Stripe's webhook. Mounted only when the server sells."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query, Request

from perpetuo.api.admin.deps import ActorDep
from perpetuo.api.admin.envelope import one
from perpetuo.api.admin.responses import PLATFORM, SIGNED_IN, WORKSPACE_ROLE, errors
from perpetuo.api.admin.routes.billing import STRIPE, BillingDep
from perpetuo.control.billing import coupons, referrals, trials, webhooks
from perpetuo.control.errors import not_found

router = APIRouter(tags=["Billing"])


@router.get("/api/plans", summary="The plan catalog", responses=SIGNED_IN)
async def list_plans(actor: ActorDep, billing: BillingDep) -> dict[str, Any]:
    return {"object": "list", "data": [billing.catalog.view(p) for p in billing.catalog.plans]}


@router.get(
    "/api/plans/{plan_id}", summary="One plan of the catalog", responses=errors(404) | SIGNED_IN
)
async def get_plan(plan_id: str, actor: ActorDep, billing: BillingDep) -> dict[str, Any]:
    plan = billing.catalog.plan(plan_id)
    if plan is None:
        raise not_found("Plan")
    return one(billing.catalog.view(plan))


@router.post(
    "/api/admin/billing/sync",
    summary="Find or make the catalog's Stripe Products and Prices (platform administrators)",
    responses=PLATFORM | STRIPE,
)
async def sync_plans(actor: ActorDep, billing: BillingDep) -> dict[str, Any]:
    if not actor.is_superadmin:
        from perpetuo.control.errors import forbidden

        raise forbidden("Only platform administrators sync the plan catalog.")
    return one(await billing.catalog.sync())


@router.post(
    "/api/trials/start",
    status_code=201,
    summary="Start the workspace's trial (admins); with a card, a Checkout page to finish it",
    responses=WORKSPACE_ROLE | errors(409) | STRIPE,
)
async def start_trial(
    body: trials.TrialStart, actor: ActorDep, billing: BillingDep
) -> dict[str, Any]:
    return one(await trials.start(billing, actor, body))


@router.get(
    "/api/trials/status",
    summary="The workspace's trial: offered, eligible, active, ended (any member)",
    responses=WORKSPACE_ROLE,
)
async def trial_status(
    workspace_id: Annotated[str, Query(max_length=40)], actor: ActorDep, billing: BillingDep
) -> dict[str, Any]:
    return one(await trials.status(billing, actor, workspace_id))


@router.get(
    "/api/referrals",
    summary="The caller's referral code and link, and the workspaces referred",
    responses=SIGNED_IN | errors(403),
)
async def my_referrals(actor: ActorDep, billing: BillingDep) -> dict[str, Any]:
    return one(await referrals.overview(billing, actor))


@router.get("/api/admin/coupons", summary="Coupons (platform administrators)", responses=PLATFORM)
async def list_coupons(actor: ActorDep, billing: BillingDep) -> dict[str, Any]:
    return {"object": "list", "data": await coupons.listing(billing, actor)}


@router.post(
    "/api/admin/coupons",
    status_code=201,
    summary="Create a coupon (platform administrators)",
    responses=PLATFORM | errors(409) | STRIPE,
)
async def create_coupon(
    body: coupons.CouponCreate, actor: ActorDep, billing: BillingDep
) -> dict[str, Any]:
    return one(await coupons.create(billing, actor, body))


@router.post(
    "/api/admin/coupons/{coupon_id}/disable",
    summary="Stop a coupon from being redeemed (platform administrators)",
    responses=PLATFORM | errors(404),
)
async def disable_coupon(coupon_id: str, actor: ActorDep, billing: BillingDep) -> dict[str, Any]:
    return one(await coupons.disable(billing, actor, coupon_id))


@router.post(
    "/api/billing/stripe/webhook",
    summary="Stripe's events, signed with the endpoint's secret (for Stripe, not people)",
    responses=errors(400),
)
async def stripe_webhook(request: Request, billing: BillingDep) -> dict[str, Any]:
    payload = await request.body()
    return await webhooks.receive(billing, payload, request.headers.get("stripe-signature"))
