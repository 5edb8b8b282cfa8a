"""The referrals page, when the server rewards referrals: the visitor's own code and link, the
workspaces they referred and the credit earned (control/billing/referrals.py decides who is
rewarded); admins also name the code this workspace came with, before its first payment."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from fastapi.responses import Response

from perpetuo.control.actor import Role
from perpetuo.control.billing import referrals
from perpetuo.control.errors import not_found
from perpetuo.schema.errors import GatewayError
from perpetuo.ui.context import PageDep, WorkspacePage, show
from perpetuo.ui.forms import SessionForm, error_of
from perpetuo.ui.pages.billing import billing_of
from perpetuo.ui.render import redirect

router = APIRouter(prefix="/ui/w/{workspace_id}/referrals")


async def _page(page: WorkspacePage, status: int = 200, **context: Any) -> Response:
    billing = billing_of(page)
    if not billing.config.referrals.enabled:
        raise not_found("Page")
    program = await referrals.overview(billing, page.actor)
    context.setdefault("errors", {})
    context.setdefault("form", {})
    return show(
        page,
        "referrals.html",
        status,
        active="referrals",
        program=program,
        earned_usd=program["rewarded"] * program["referrer_credits_usd"],
        **context,
    )


@router.get("")
async def referrals_page(page: PageDep) -> Response:
    return await _page(page)


@router.post("/attach")
async def attach(page: PageDep, form: SessionForm) -> Response:
    billing = billing_of(page)
    try:
        page.require(Role.ADMIN)
        await referrals.attach(billing, page.actor, page.id, form.get("code"))
    except GatewayError as exc:
        return await _page(page, exc.status, errors=error_of(exc, "code"), form=form.values)
    return redirect(
        page.request,
        page.url("referrals"),
        "Referral recorded: both sides get their credit with this workspace's first payment.",
    )
