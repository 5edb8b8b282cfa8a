"""The workspace list (and creating one), and each workspace's overview page."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import Response
from sqlalchemy import func, select

from perpetuo.control import analytics, workspaces
from perpetuo.control.workspaces import WorkspaceCreate
from perpetuo.schema.errors import GatewayError
from perpetuo.store.schema import api_keys, provider_credentials, workspace_models
from perpetuo.store.timeutil import utcnow
from perpetuo.ui import referral_link
from perpetuo.ui.budget import budget_status
from perpetuo.ui.context import PageDep, WorkspacePage, show
from perpetuo.ui.forms import Errors, SessionForm, error_of, validate
from perpetuo.ui.render import redirect, render
from perpetuo.ui.session import Visitor, VisitorDep, plane_of

router = APIRouter()


def _list_page(request: Request, visitor: Visitor, status: int = 200, **context: Any) -> Response:
    return render(
        request,
        "workspaces.html",
        status,
        visitor=visitor,
        csrf=visitor.csrf,
        page=None,
        **context,
    )


@router.get("/ui/workspaces")
async def list_page(request: Request, visitor: VisitorDep) -> Response:
    return _list_page(request, visitor, form={})


@router.post("/ui/workspaces")
async def create(request: Request, visitor: VisitorDep, form: SessionForm) -> Response:
    errors: Errors = {}
    spec = validate(WorkspaceCreate, {"name": form.get("name")}, errors)
    if spec is not None:
        try:
            view = await workspaces.create_workspace(plane_of(request), visitor.actor, spec)
            done = redirect(request, f"/ui/w/{view['id']}", f"Workspace {view['name']} created.")
            return await referral_link.name_referrer(request, done, visitor.actor, view["id"])
        except GatewayError as exc:
            errors = error_of(exc, "name")
    return _list_page(request, visitor, 422, form=form.values, errors=errors)


async def _counts(page: WorkspacePage) -> dict[str, int]:
    async with page.plane.db.connect() as conn:

        async def count(table: Any, *where: Any) -> int:
            query = select(func.count()).select_from(table).where(table.c.workspace_id == page.id)
            return int(await conn.scalar(query.where(*where)) or 0)

        return {
            "credentials": await count(provider_credentials),
            "models": await count(workspace_models),
            "api_keys": await count(api_keys, api_keys.c.revoked_at.is_(None)),
        }


def _totals(rows: list[dict[str, Any]]) -> dict[str, Any]:
    requests = sum(r["requests"] for r in rows)
    return {
        "requests": requests,
        "errors": sum(r["errors"] for r in rows),
        "tokens": sum(r["total_tokens"] for r in rows),
        "cost_usd": sum(r["cost_usd"] for r in rows),
        "error_rate": sum(r["errors"] for r in rows) / requests if requests else None,
    }


@dataclass(frozen=True)
class Step:
    label: str
    done: bool
    slug: str
    note: str | None = None  # how it stands, when not plainly done or to do


def _steps(counts: dict[str, int], platform_aliases: int, requests: int) -> list[Step]:
    """The getting-started checklist, each item as it really stands: the platform's models
    stand in for a credential of one's own, but not for an alias of one's own."""
    platform = f"the platform's providers serve {platform_aliases} model" + (
        "s" if platform_aliases != 1 else ""
    )
    credential = Step("Add a provider credential", counts["credentials"] > 0, "providers")
    if not credential.done and platform_aliases:
        credential = Step(credential.label, True, "providers", f"not needed: {platform}")
    alias = Step("Make a model alias", counts["models"] > 0, "models")
    if not alias.done and platform_aliases:
        alias = Step(alias.label, False, "models", f"optional: {platform}")
    return [
        credential,
        alias,
        Step("Create an API key", counts["api_keys"] > 0, "keys"),
        Step("Send a first request", requests > 0, "playground"),
    ]


@router.get("/ui/w/{workspace_id}")
async def overview(page: PageDep) -> Response:
    now = utcnow()
    rows = await analytics.usage_series(
        page.plane, page.actor, page.id, since=now - dt.timedelta(hours=24), until=now
    )
    counts = await _counts(page)
    platform_aliases = len(page.gateway.table.aliases)
    steps = _steps(counts, platform_aliases, _totals(rows)["requests"])
    return show(
        page,
        "overview.html",
        active="",
        totals=_totals(rows),
        counts=counts,
        platform_aliases=platform_aliases,
        steps=steps,
        budget=await budget_status(page),
    )
