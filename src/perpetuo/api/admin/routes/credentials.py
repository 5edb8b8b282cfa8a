"""/api/workspaces/{workspace_id}/credentials: provider credentials (BYOK)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request, Response

from perpetuo.api.admin.deps import ActorDep, PlaneDep
from perpetuo.api.admin.envelope import CursorParam, LimitParam, one, page
from perpetuo.api.admin.responses import WORKSPACE, WORKSPACE_ROLE, errors
from perpetuo.control import credentials as service
from perpetuo.control.connection_test import test_connection
from perpetuo.control.model_discovery import discover_for_credential
from perpetuo.metering.pricing import default_catalog

router = APIRouter(
    prefix="/api/workspaces/{workspace_id}/credentials",
    tags=["Provider credentials"],
    responses=WORKSPACE,
)
# Storing or using a secret needs the admin role and the server's encryption key.
WITH_SECRET = {**WORKSPACE_ROLE, **errors(503)}


@router.get("", summary="List provider credentials (masked)")
async def list_credentials(
    workspace_id: str,
    actor: ActorDep,
    plane: PlaneDep,
    limit: LimitParam = 50,
    cursor: CursorParam = None,
) -> dict[str, Any]:
    result = await service.list_credentials(plane, actor, workspace_id, limit=limit, cursor=cursor)
    return page(result, service.credential_view)


@router.post(
    "",
    status_code=201,
    summary="Store a provider credential (encrypted; never shown again)",
    responses=WITH_SECRET,
)
async def create_credential(
    workspace_id: str, body: service.CredentialCreate, actor: ActorDep, plane: PlaneDep
) -> dict[str, Any]:
    return one(await service.create_credential(plane, actor, workspace_id, body))


@router.get("/{credential_id}", summary="Get a provider credential (masked)")
async def get_credential(
    workspace_id: str, credential_id: str, actor: ActorDep, plane: PlaneDep
) -> dict[str, Any]:
    return one(await service.get_credential(plane, actor, workspace_id, credential_id))


@router.delete(
    "/{credential_id}",
    status_code=204,
    summary="Delete a provider credential",
    responses=WORKSPACE_ROLE,
)
async def delete_credential(
    workspace_id: str, credential_id: str, actor: ActorDep, plane: PlaneDep
) -> Response:
    await service.delete_credential(plane, actor, workspace_id, credential_id)
    return Response(status_code=204)


@router.post(
    "/{credential_id}/test",
    summary="Test the connection with this credential",
    responses=WITH_SECRET,
)
async def test_credential(
    workspace_id: str, credential_id: str, actor: ActorDep, plane: PlaneDep, request: Request
) -> dict[str, Any]:
    row, secret = await service.load_secret(plane, actor, workspace_id, credential_id)
    return one(await test_connection(request.app.state.http, row, secret, plane.egress))


@router.post(
    "/{credential_id}/models",
    summary="List the provider's models with this credential, each with a proposed alias",
    description="Calls the provider's model list (every page) and proposes an alias per model "
    "with what the pricing catalog knows of it: prices (USD per million tokens), output limit "
    "and context window. Nothing is created; aliases are made with the models API.",
    responses={**WITH_SECRET, **errors(502)},
)
async def credential_models(
    workspace_id: str, credential_id: str, actor: ActorDep, plane: PlaneDep, request: Request
) -> dict[str, Any]:
    row, secret = await service.load_secret(plane, actor, workspace_id, credential_id)
    found = await discover_for_credential(
        request.app.state.http, row, secret, plane.egress, default_catalog()
    )
    return {"object": "list", "data": found}
