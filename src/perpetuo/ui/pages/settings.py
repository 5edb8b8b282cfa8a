"""Workspace settings: name, default routing strategy, request-log retention and body
logging (admins); deleting the workspace (owners)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from fastapi.responses import Response

from perpetuo.auth.principal import DEFAULT_WORKSPACE_ID
from perpetuo.control import workspaces
from perpetuo.control.actor import Role
from perpetuo.control.errors import invalid
from perpetuo.control.workspaces import WorkspaceUpdate
from perpetuo.schema.errors import GatewayError
from perpetuo.ui.context import PageDep, WorkspacePage, show
from perpetuo.ui.forms import Errors, SessionForm, error_of, validate
from perpetuo.ui.render import redirect

router = APIRouter(prefix="/ui/w/{workspace_id}/settings")
STRATEGIES = ["default", "weighted", "fastest", "cheapest", "reliable", "least-busy"]


def _page(page: WorkspacePage, status: int = 200, **context: Any) -> Response:
    return show(
        page,
        "settings.html",
        status,
        active="settings",
        settings=page.settings,
        strategies=STRATEGIES,
        currencies=_currencies(page),
        deletable=page.id != DEFAULT_WORKSPACE_ID,
        **context,
    )


def _currencies(page: WorkspacePage) -> list[tuple[str, str]]:
    """USD, then each currency the operator set a rate for, with the rate and its date."""
    rates = page.plane.currency.rates
    return [("", "USD (default)")] + [
        (code, f"{code} (1 USD = {rate.per_usd:g} {code}, rate of {rate.date.isoformat()})")
        for code, rate in sorted(rates.items())
    ]


@router.get("")
async def settings_page(page: PageDep) -> Response:
    return _page(page)


@router.post("")
async def save(page: PageDep, form: SessionForm) -> Response:
    errors: Errors = {}
    data = {
        "name": form.get("name"),
        "settings": {
            "default_strategy": form.get("default_strategy") or None,
            "log_retention_days": form.integer("log_retention_days", errors),
            "log_request_bodies": form.checked("log_request_bodies"),
            "chat_session_retention_days": form.integer("chat_session_retention_days", errors),
            "currency": form.get("currency") or None,
        },
    }
    try:
        page.require(Role.ADMIN)
        spec = validate(WorkspaceUpdate, data, errors)
        if spec is None:
            return _page(
                page, 422, errors={k.removeprefix("settings."): v for k, v in errors.items()}
            )
        await workspaces.update_workspace(page.plane, page.actor, page.id, spec)
    except GatewayError as exc:
        return _page(page, exc.status, errors=error_of(exc, "form"))
    return redirect(page.request, page.url("settings"), "Settings saved.")


@router.post("/delete")
async def delete(page: PageDep, form: SessionForm) -> Response:
    try:
        page.require(Role.OWNER)
        if form.get("confirm") != page.name:
            raise invalid("Type the workspace's name exactly to confirm.", "confirm")
        await workspaces.delete_workspace(page.plane, page.actor, page.id)
    except GatewayError as exc:
        return _page(page, exc.status, errors=error_of(exc, "delete"))
    return redirect(page.request, "/ui/workspaces", f"Workspace {page.name} deleted.")
