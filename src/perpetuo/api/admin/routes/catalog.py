"""/api/catalog and /api/rankings: the public model catalog and usage rankings.

Nobody signs in for these, so each is off until the operator turns it on (`public.catalog`,
`public.rankings` in the config file); until then they answer 404, as if they did not exist.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query, Request

from perpetuo.api.admin.responses import errors
from perpetuo.control import catalog, rankings
from perpetuo.metering.pricing import default_catalog
from perpetuo.pipeline.runtime import Gateway
from perpetuo.schema.errors import ErrorType, GatewayError

router = APIRouter(tags=["Catalog and rankings"])


def _gateway(request: Request) -> Gateway:
    return request.app.state.gateway


def _off(what: str) -> GatewayError:
    return GatewayError(
        404, f"The {what} is not public on this server.", type=ErrorType.NOT_FOUND, code="not_found"
    )


def _catalog_gateway(request: Request) -> Gateway:
    gateway = _gateway(request)
    if not gateway.config.public.catalog:
        raise _off("model catalog")
    return gateway


@router.get(
    "/api/catalog/models",
    summary="The platform's models: providers, prices, limits, live health (when public)",
    responses=errors(404),
)
async def catalog_models(request: Request) -> dict[str, Any]:
    gateway = _catalog_gateway(request)
    data = catalog.catalog_models(gateway.table, gateway.router.state, default_catalog())
    return {"object": "list", "data": data}


@router.get(
    "/api/catalog/providers",
    summary="The providers behind the platform's models, with their health (when public)",
    responses=errors(404),
)
async def catalog_providers(request: Request) -> dict[str, Any]:
    gateway = _catalog_gateway(request)
    return {
        "object": "list",
        "data": catalog.catalog_providers(gateway.table, gateway.router.state),
    }


Days = Annotated[
    int | None, Query(ge=1, le=90, description="Days of usage (default: the server's window)")
]


@router.get(
    "/api/rankings/models",
    summary="Models ranked by tokens used across all workspaces, as aggregates (when public)",
    responses=errors(404, 422),
)
async def model_rankings(request: Request, days: Days = None) -> dict[str, Any]:
    gateway = _gateway(request)
    public = gateway.config.public
    if not public.rankings:
        raise _off("model ranking")
    state = request.app.state
    if getattr(state, "rankings", None) is None:
        state.rankings = rankings.Rankings(gateway.plane.db)
    return await state.rankings.models(
        gateway.table.aliases,
        days=days or public.rankings_window_days,
        min_workspaces=public.rankings_min_workspaces,
    )
