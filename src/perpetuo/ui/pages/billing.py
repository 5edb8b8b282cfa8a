"""The workspace's billing page, when the server sells plans and credits: the balance (every
member), plan and renewal, the trial, the plans to choose, credit top-ups, the customer
portal, invoices, coupons and automatic recharge (admins).

Every action is a control-plane call (control/billing); paying happens on Stripe's hosted
pages, which the page's forms lead to, so its Content-Security-Policy lets forms go there.
A 404 while billing is off, as the billing API is then not mounted.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from fastapi import APIRouter
from fastapi.responses import RedirectResponse, Response

from perpetuo.control.actor import Role
from perpetuo.control.billing import Billing, checkout, coupons, overview, plan_changes, recharge
from perpetuo.control.billing import trials as trial_service
from perpetuo.control.billing.checkout import SubscribeRequest, TopUpRequest
from perpetuo.control.billing.coupons import RedeemRequest
from perpetuo.control.billing.plan_changes import PlanChange
from perpetuo.control.billing.recharge import AutoRecharge
from perpetuo.control.billing.subscriptions import SERVING
from perpetuo.control.errors import not_found
from perpetuo.schema.errors import GatewayError
from perpetuo.ui.context import PageDep, WorkspacePage, show
from perpetuo.ui.forms import Errors, FormData, SessionForm, error_of, validate
from perpetuo.ui.render import redirect
from perpetuo.ui.security import CONTENT_SECURITY_POLICY

router = APIRouter(prefix="/ui/w/{workspace_id}/billing")
INTERVALS = [("month", "Monthly"), ("year", "Yearly")]
CHECKOUT_NOTICES = {
    "done": "Payment received by Stripe: the plan and credits show here once Stripe confirms "
    "it (usually within seconds; reload the page).",
    "canceled": "Checkout was canceled; nothing was charged.",
}


def billing_of(page: WorkspacePage) -> Billing:
    billing = page.plane.billing
    if billing is None:
        raise not_found("Page")
    return billing


def stripe_policy(billing: Billing) -> str:
    """The dashboard's policy, with Stripe's hosted pages as places forms may lead."""
    origins = " ".join(billing.stripe.hosted_origins)
    return CONTENT_SECURITY_POLICY.replace("form-action 'self'", f"form-action 'self' {origins}")


def _invoice_time(item: dict[str, Any]) -> dict[str, Any]:
    created = item.get("created")
    moment = dt.datetime.fromtimestamp(int(created), dt.UTC) if created else None
    return {**item, "created_at": moment}


async def _invoices(billing: Billing, page: WorkspacePage) -> tuple[dict[str, Any], str | None]:
    """Invoices come from Stripe: when it cannot be reached the rest of the page still shows."""
    try:
        found = await overview.invoices(billing, page.actor, page.id)
    except GatewayError as exc:
        return {"data": [], "payments": []}, exc.message
    return {**found, "data": [_invoice_time(item) for item in found["data"]]}, None


async def _page(page: WorkspacePage, status: int = 200, **context: Any) -> Response:
    billing = billing_of(page)
    account = await overview.overview(billing, page.actor, page.id)
    trial = await trial_service.status(billing, page.actor, page.id)
    invoices, invoices_error = {"data": [], "payments": []}, None
    if page.can("admin"):
        invoices, invoices_error = await _invoices(billing, page)
    checkout_state = page.request.query_params.get("checkout", "")
    plans = [billing.catalog.view(plan) for plan in billing.catalog.plans]
    saved = account["auto_recharge"]
    context.setdefault("errors", {})
    context.setdefault("form", {})
    response = show(
        page,
        "billing.html",
        status,
        active="billing",
        account=account,
        subscribed=account["subscription_status"] in SERVING,
        trial=trial,
        plans=plans,
        plan_names={plan["id"]: plan["name"] for plan in plans},
        # Never set: the form offers the API's defaults rather than zeros.
        recharge_shown=saved if saved["amount_usd"] else AutoRecharge(enabled=False).model_dump(),
        intervals=INTERVALS,
        topup=billing.config.topup,
        recharge_offered=billing.config.auto_recharge.enabled,
        invoices=invoices["data"],
        payments=invoices["payments"],
        invoices_error=invoices_error,
        checkout_notice=CHECKOUT_NOTICES.get(checkout_state),
        **context,
    )
    response.headers["content-security-policy"] = stripe_policy(billing)
    return response


async def _admin_action(page: WorkspacePage, where: str) -> Billing | Response:
    """The billing service for an admin, or the page with the refusal next to `where`."""
    billing = billing_of(page)
    try:
        page.require(Role.ADMIN)
    except GatewayError as exc:
        return await _page(page, exc.status, errors=error_of(exc, where))
    return billing


def _to_stripe(url: str) -> Response:
    return RedirectResponse(url, status_code=303)


@router.get("")
async def billing_page(page: PageDep) -> Response:
    return await _page(page)


@router.post("/checkout")
async def subscribe(page: PageDep, form: SessionForm) -> Response:
    billing = await _admin_action(page, "plans")
    if isinstance(billing, Response):
        return billing
    errors: Errors = {}
    data = {"plan_id": form.get("plan_id"), "interval": form.get("interval") or "month"}
    spec = validate(SubscribeRequest, data, errors)
    if spec is None:
        return await _page(page, 422, errors={"plans": next(iter(errors.values()))})
    try:
        session = await checkout.subscription_session(
            billing, page.actor, page.id, spec.plan_id, spec.interval
        )
    except GatewayError as exc:
        return await _page(page, exc.status, errors={"plans": exc.message})
    return _to_stripe(session["url"])


@router.post("/plan")
async def change_plan(page: PageDep, form: SessionForm) -> Response:
    billing = await _admin_action(page, "plans")
    if isinstance(billing, Response):
        return billing
    errors: Errors = {}
    data = {"plan_id": form.get("plan_id"), "interval": form.get("interval") or "month"}
    spec = validate(PlanChange, data, errors)
    if spec is None:
        return await _page(page, 422, errors={"plans": next(iter(errors.values()))})
    try:
        done = await plan_changes.change_plan(billing, page.actor, page.id, spec)
    except GatewayError as exc:
        return await _page(page, exc.status, errors={"plans": exc.message})
    notice = (
        "The subscription ends when its period ends."
        if done.get("cancel_at_period_end")
        else f"Plan changed to {spec.plan_id}; Stripe bills the prorated difference."
    )
    return redirect(page.request, page.url("billing"), notice)


async def _set_cancel(page: WorkspacePage, cancel: bool) -> Response:
    billing = await _admin_action(page, "plan")
    if isinstance(billing, Response):
        return billing
    try:
        await plan_changes.set_cancel(billing, page.actor, page.id, cancel)
    except GatewayError as exc:
        return await _page(page, exc.status, errors={"plan": exc.message})
    notice = "The subscription ends when its period ends." if cancel else "The plan renews."
    return redirect(page.request, page.url("billing"), notice)


@router.post("/cancel")
async def cancel(page: PageDep, form: SessionForm) -> Response:
    return await _set_cancel(page, True)


@router.post("/resume")
async def resume(page: PageDep, form: SessionForm) -> Response:
    return await _set_cancel(page, False)


def _topup_amount(form: FormData, errors: Errors) -> float | None:
    """A preset button's amount, else the custom amount typed."""
    if form.get("preset_usd"):
        return form.number("preset_usd", errors)
    amount = form.number("custom_usd", errors)
    if amount is None and not errors:
        errors["custom_usd"] = "Enter an amount."
    return amount


@router.post("/topup")
async def top_up(page: PageDep, form: SessionForm) -> Response:
    billing = await _admin_action(page, "topup")
    if isinstance(billing, Response):
        return billing
    errors: Errors = {}
    amount = _topup_amount(form, errors)
    spec = validate(TopUpRequest, {"amount_usd": amount}, errors) if not errors else None
    if spec is None:
        message = next(iter(errors.values()))
        return await _page(page, 422, errors={"custom_usd": message}, form=form.values)
    try:
        session = await checkout.topup_session(billing, page.actor, page.id, spec.amount_usd)
    except GatewayError as exc:
        return await _page(page, exc.status, errors={"custom_usd": exc.message}, form=form.values)
    return _to_stripe(session["url"])


@router.post("/portal")
async def portal(page: PageDep, form: SessionForm) -> Response:
    billing = await _admin_action(page, "plan")
    if isinstance(billing, Response):
        return billing
    try:
        session = await checkout.portal_session(billing, page.actor, page.id)
    except GatewayError as exc:
        return await _page(page, exc.status, errors={"plan": exc.message})
    return _to_stripe(session["url"])


@router.post("/trial")
async def start_trial(page: PageDep, form: SessionForm) -> Response:
    billing = await _admin_action(page, "trial")
    if isinstance(billing, Response):
        return billing
    spec = trial_service.TrialStart(workspace_id=page.id)
    try:
        started = await trial_service.start(billing, page.actor, spec)
    except GatewayError as exc:
        return await _page(page, exc.status, errors={"trial": exc.message})
    if started.get("checkout_url"):  # this server's trials take a card first
        return _to_stripe(started["checkout_url"])
    return redirect(page.request, page.url("billing"), "Your trial has started.")


@router.post("/coupons")
async def redeem(page: PageDep, form: SessionForm) -> Response:
    billing = await _admin_action(page, "code")
    if isinstance(billing, Response):
        return billing
    errors: Errors = {}
    spec = validate(RedeemRequest, {"code": form.get("code")}, errors)
    if spec is None:
        return await _page(page, 422, errors={"code": errors.get("code", "Enter a code.")})
    try:
        done = await coupons.redeem(billing, page.actor, page.id, spec.code)
    except GatewayError as exc:
        return await _page(page, exc.status, errors=error_of(exc, "code"), form=form.values)
    notice = (
        f"Coupon {spec.code.upper()} redeemed."
        if done["status"] == "applied"
        else f"Coupon {spec.code.upper()} will apply at your next Checkout."
    )
    return redirect(page.request, page.url("billing"), notice)


@router.post("/auto-recharge")
async def auto_recharge(page: PageDep, form: SessionForm) -> Response:
    billing = await _admin_action(page, "recharge")
    if isinstance(billing, Response):
        return billing
    errors: Errors = {}
    data = {
        "enabled": form.checked("enabled"),
        "threshold_usd": form.number("threshold_usd", errors),
        "amount_usd": form.number("amount_usd", errors),
    }
    spec = validate(AutoRecharge, {k: v for k, v in data.items() if v is not None}, errors)
    if spec is None:
        return await _page(page, 422, errors=errors, form=form.values)
    try:
        await recharge.configure(billing, page.actor, page.id, spec)
    except GatewayError as exc:
        return await _page(page, exc.status, errors=error_of(exc, "recharge"), form=form.values)
    notice = "Automatic recharge is on." if spec.enabled else "Automatic recharge is off."
    return redirect(page.request, page.url("billing"), notice)
