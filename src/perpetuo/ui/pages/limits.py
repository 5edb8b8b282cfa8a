"""Limits and plan: the plan and the limits in force, budgets and alerts (workspace admins),
plan, limit overrides and prepaid credits (platform administrators only)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from fastapi.responses import Response

from perpetuo.control import credits, workspaces
from perpetuo.control.actor import Role
from perpetuo.control.credits import CreditEntryCreate
from perpetuo.control.errors import forbidden
from perpetuo.control.workspaces import SettingsPatch, WorkspaceUpdate
from perpetuo.limits.plans import PLANS, WorkspaceLimits
from perpetuo.schema.errors import GatewayError
from perpetuo.ui.budget import PERIOD_CHOICES, budget_status
from perpetuo.ui.context import PageDep, WorkspacePage, show
from perpetuo.ui.formatting import page_currency
from perpetuo.ui.forms import Errors, FormData, SessionForm, error_of, validate
from perpetuo.ui.render import redirect

router = APIRouter(prefix="/ui/w/{workspace_id}/limits")
RATE_FIELDS = (
    ("rpm", "Requests / minute"),
    ("tpm", "Tokens / minute"),
    ("daily_tokens", "Tokens / day"),
    ("monthly_tokens", "Tokens / month"),
    ("max_parallel", "Parallel requests"),
)


async def _page(page: WorkspacePage, status: int = 200, **context: Any) -> Response:
    settings = page.settings
    entries: list[dict[str, Any]] = []
    balance = None
    if page.can("admin"):
        micros, ledger = await credits.ledger(
            page.plane, page.actor, page.id, limit=20, cursor=None
        )
        balance, entries = micros / 1_000_000, [credits.entry_view(r) for r in ledger.rows]
    elif settings.credits_required:  # every member sees what is left; admins the ledger too
        balance = (await credits.summary(page.plane, page.actor, page.id))["remaining_usd"]
    return show(
        page,
        "limits.html",
        status,
        active="limits",
        settings=settings,
        effective=WorkspaceLimits.from_settings(settings).scope_limits(),
        plans=PLANS,
        rate_fields=RATE_FIELDS,
        periods=PERIOD_CHOICES,
        currency=page_currency(page),
        budget=await budget_status(page),
        balance=balance,
        ledger=entries,
        superadmin=page.visitor.is_superadmin,
        **context,
    )


@router.get("")
async def limits_page(page: PageDep) -> Response:
    return await _page(page)


def _rates(form: FormData, prefix: str, errors: Errors) -> dict[str, int] | None:
    values = {name: form.integer(f"{prefix}.{name}", errors) for name, _ in RATE_FIELDS}
    kept = {name: value for name, value in values.items() if value is not None}
    return kept or None


async def _patch(page: WorkspacePage, data: dict[str, Any], where: str, errors: Errors) -> Response:
    try:
        spec = validate(SettingsPatch, data, errors)
        if spec is None:
            return await _page(page, 422, errors=errors)
        update = WorkspaceUpdate(settings=spec)
        await workspaces.update_workspace(page.plane, page.actor, page.id, update)
    except GatewayError as exc:
        return await _page(page, exc.status, errors=error_of(exc, where))
    return redirect(page.request, page.url("limits"), "Limits saved.")


@router.post("/budget")
async def save_budget(page: PageDep, form: SessionForm) -> Response:
    errors: Errors = {}
    try:
        page.require(Role.ADMIN)
    except GatewayError as exc:
        return await _page(page, exc.status, errors=error_of(exc, "budget"))
    data = {
        "budget_usd": form.number("budget_usd", errors),
        "budget_period": form.optional("budget_period"),
        "budget_soft_usd": form.number("budget_soft_usd", errors),
        "alert_webhook_url": form.optional("alert_webhook_url"),
        "user_limits": _rates(form, "user_limits", errors),
    }
    currency = page_currency(page)  # the form's amounts are in the workspace's currency
    for name in ("budget_usd", "budget_soft_usd"):
        data[name] = currency.entered(data[name], getattr(page.settings, name))
    return await _patch(page, data, "budget", errors)


@router.post("/platform")
async def save_platform(page: PageDep, form: SessionForm) -> Response:
    errors: Errors = {}
    try:
        page.require(Role.ADMIN)  # strangers and low roles first, then the platform rule
        if not page.visitor.is_superadmin:
            raise forbidden("Only platform administrators can change the plan and its limits.")
    except GatewayError as exc:
        return await _page(page, exc.status, errors=error_of(exc, "platform"))
    data = {
        "plan": form.optional("plan"),
        "limits": _rates(form, "limits", errors),
        "credits_required": form.checked("credits_required"),
    }
    return await _patch(page, data, "platform", errors)


@router.post("/credits")
async def add_credits(page: PageDep, form: SessionForm) -> Response:
    errors: Errors = {}
    try:
        page.require(Role.ADMIN)
        data = {"amount_usd": form.number("amount_usd", errors), "note": form.optional("note")}
        spec = validate(CreditEntryCreate, data, errors)
        if spec is None:
            return await _page(page, 422, errors=errors)
        await credits.add_entry(page.plane, page.actor, page.id, spec)
    except GatewayError as exc:
        return await _page(page, exc.status, errors=error_of(exc, "credits"))
    return redirect(page.request, page.url("limits"), "Credits recorded.")
