"""Pages anyone may see once the operator turns them on (`public:` in the config file): the
landing page, pricing, the model catalog and the model rankings.

Signed-in people always see the catalog; the rankings (usage across every workspace, as
aggregates) only when the operator publishes them, except platform administrators, who may
look before deciding. Each page is a 404 while it is off.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import Response

from perpetuo.control import catalog
from perpetuo.control.billing import Billing
from perpetuo.control.billing.catalog import plan_limits
from perpetuo.control.errors import not_found
from perpetuo.control.rankings import Rankings
from perpetuo.limits.plans import PLANS, ScopeLimits
from perpetuo.metering.pricing import default_catalog
from perpetuo.pipeline.runtime import Gateway
from perpetuo.ui.charts import share_bar
from perpetuo.ui.render import markup, render
from perpetuo.ui.session import SignInRequired, Visitor, find_visitor

router = APIRouter(prefix="/ui")


@dataclass(frozen=True)
class PlanOffer:
    """A plan as the pricing page shows it."""

    name: str
    title: str
    limits: ScopeLimits
    monthly_usd: float | None = None  # None: no list price (usage is billed, or ask)


def plan_offers(billing: Billing | None = None) -> list[PlanOffer]:
    """The plans on the pricing page: the one place that reads the plan catalog. When the
    server sells plans, its billing catalog (prices, and limits over their tiers); else the
    tiers of limits/plans.py, which carry limits and no prices."""
    if billing is not None and billing.catalog.plans:
        return [
            PlanOffer(plan.id, plan.name, plan_limits(plan), plan.monthly_usd)
            for plan in billing.catalog.plans
        ]
    return [PlanOffer(name, name.title(), limits) for name, limits in PLANS.items()]


def _gateway(request: Request) -> Gateway:
    return request.app.state.gateway


def _show(request: Request, template: str, visitor: Visitor | None, **context: Any) -> Response:
    """A public page: the dashboard's layout for people signed in, the public one otherwise."""
    public = _gateway(request).config.public
    return render(
        request,
        template,
        layout="app_layout.html" if visitor is not None else "public_layout.html",
        visitor=visitor,
        csrf=visitor.csrf if visitor is not None else "",
        page=None,
        public=public,
        **context,
    )


@router.get("/home")
async def home(request: Request) -> Response:
    public = _gateway(request).config.public
    if not public.landing:
        raise not_found("Page")
    visitor = await find_visitor(request)
    models = catalog.catalog_models(*_catalog_sources(request)) if public.catalog else []
    return _show(request, "home.html", visitor, models=models[:6])


@router.get("/pricing")
async def pricing(request: Request) -> Response:
    public = _gateway(request).config.public
    if not public.pricing:
        raise not_found("Page")
    models = [m for m in catalog.catalog_models(*_catalog_sources(request)) if _priced(m)]
    return _show(
        request,
        "pricing.html",
        await find_visitor(request),
        plans=plan_offers(_gateway(request).plane.billing),
        models=models,
    )


@router.get("/catalog")
async def catalog_page(request: Request) -> Response:
    visitor = await _visitor_unless(request, _gateway(request).config.public.catalog)
    models = catalog.catalog_models(*_catalog_sources(request))
    return _show(request, "catalog.html", visitor, models=models)


@router.get("/rankings")
async def rankings_page(request: Request, days: int | None = None) -> Response:
    gateway = _gateway(request)
    public = gateway.config.public
    visitor = await find_visitor(request)
    if not public.rankings and not (visitor is not None and visitor.is_superadmin):
        raise not_found("Page")
    window = days if days in (1, 7, 30) else public.rankings_window_days
    state = request.app.state
    if getattr(state, "rankings", None) is None:
        state.rankings = Rankings(gateway.plane.db)
    ranked = await state.rankings.models(
        gateway.table.aliases, days=window, min_workspaces=public.rankings_min_workspaces
    )
    top = max((e["total_tokens"] for e in ranked["data"]), default=0) or 1
    for entry in ranked["data"]:
        entry["bar"] = markup(share_bar(entry["total_tokens"] / top))
    return _show(
        request,
        "rankings.html",
        visitor,
        ranked=ranked,
        window=window,
        published=public.rankings,
        min_workspaces=public.rankings_min_workspaces,
    )


async def _visitor_unless(request: Request, public: bool) -> Visitor | None:
    """The visitor; someone not signed in may come in only when the page is public."""
    visitor = await find_visitor(request)
    if visitor is None and not public:
        raise SignInRequired()
    return visitor


def _catalog_sources(request: Request) -> tuple[Any, ...]:
    gateway = _gateway(request)
    return gateway.table, gateway.router.state, default_catalog()


def _priced(model: dict[str, Any]) -> bool:
    return any(p["pricing"] for p in model["providers"])
