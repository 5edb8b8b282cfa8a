"""Single sign-on: /api/auth/sso/providers (the ways to sign in, for a sign-in page), and
/api/workspaces/{workspace_id}/sso/... (a workspace's own identity providers, and the
e-mail domains a platform administrator verified for it).

Signing in itself is a browser flow, at /ui/sso/{provider}/start and its callback."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Response

from perpetuo.api.admin.deps import ActorDep, PlaneDep
from perpetuo.api.admin.envelope import one
from perpetuo.api.admin.responses import WORKSPACE_ROLE, errors
from perpetuo.control.sso import admin as service
from perpetuo.control.sso import domains
from perpetuo.control.sso.check import check_provider
from perpetuo.control.sso.spec import ProviderSpec

router = APIRouter(tags=["Single sign-on"])
PROVIDERS = "/api/workspaces/{workspace_id}/sso/providers"
DOMAINS = "/api/workspaces/{workspace_id}/sso/domains"
# Storing a secret needs the server's encryption key; domains may belong to another workspace.
WITH_SECRET = {**WORKSPACE_ROLE, **errors(409, 503)}


async def _admin_first(workspace_id: str, actor: ActorDep, plane: PlaneDep) -> None:
    """Dependencies run before FastAPI validates the body: the role is judged first."""
    await service.authorize(plane, actor, workspace_id)


ADMIN_FIRST = [Depends(_admin_first)]


def _way(spec: ProviderSpec) -> dict[str, Any]:
    return {
        "object": "sign_in_provider",
        "id": spec.key,
        "name": spec.name,
        "type": spec.kind,
        "sso_required": spec.sso_required,
        "sign_in_url": f"/ui/sso/{spec.key}/start",
    }


@router.get(
    "/api/auth/sso/providers",
    summary="Ways to sign in: the platform's providers, and the one for an e-mail address",
    responses=errors(422, 503),
)
async def sign_in_providers(
    plane: PlaneDep,
    email: Annotated[
        str | None,
        Query(max_length=320, description="Also the provider for this address's domain"),
    ] = None,
) -> dict[str, Any]:
    found = {spec.key: spec for spec in plane.sso.buttons()}
    if email and "@" in email and (spec := await plane.sso.for_email(plane, email)):
        found = {spec.key: spec, **found}
    return {"data": [_way(spec) for spec in found.values()]}


@router.get(PROVIDERS, summary="List the workspace's sign-in providers", responses=WORKSPACE_ROLE)
async def list_providers(workspace_id: str, actor: ActorDep, plane: PlaneDep) -> dict[str, Any]:
    return {"data": await service.list_providers(plane, actor, workspace_id)}


@router.post(
    PROVIDERS,
    status_code=201,
    summary="Add an identity provider (its client secret is stored encrypted)",
    responses=WITH_SECRET,
    dependencies=ADMIN_FIRST,
)
async def create_provider(
    workspace_id: str, body: service.SsoProviderCreate, actor: ActorDep, plane: PlaneDep
) -> dict[str, Any]:
    return one(await service.create_provider(plane, actor, workspace_id, body))


@router.get(
    PROVIDERS + "/{provider_id}", summary="Get a sign-in provider", responses=WORKSPACE_ROLE
)
async def get_provider(
    workspace_id: str, provider_id: str, actor: ActorDep, plane: PlaneDep
) -> dict[str, Any]:
    return one(await service.get_provider(plane, actor, workspace_id, provider_id))


@router.patch(
    PROVIDERS + "/{provider_id}",
    summary="Change a sign-in provider (a new secret, domains, role mapping, ...)",
    responses=WITH_SECRET,
    dependencies=ADMIN_FIRST,
)
async def update_provider(
    workspace_id: str,
    provider_id: str,
    body: service.SsoProviderUpdate,
    actor: ActorDep,
    plane: PlaneDep,
) -> dict[str, Any]:
    return one(await service.update_provider(plane, actor, workspace_id, provider_id, body))


@router.delete(
    PROVIDERS + "/{provider_id}",
    status_code=204,
    summary="Remove a sign-in provider (its linked identities go with it)",
    responses=WORKSPACE_ROLE,
)
async def delete_provider(
    workspace_id: str, provider_id: str, actor: ActorDep, plane: PlaneDep
) -> Response:
    await service.delete_provider(plane, actor, workspace_id, provider_id)
    return Response(status_code=204)


@router.post(
    PROVIDERS + "/{provider_id}/test",
    summary="Read the provider's discovery document and keys now",
    responses={**WORKSPACE_ROLE, **errors(503)},
)
async def test_provider(
    workspace_id: str, provider_id: str, actor: ActorDep, plane: PlaneDep
) -> dict[str, Any]:
    return one(await check_provider(plane, actor, workspace_id, provider_id))


@router.get(DOMAINS, summary="E-mail domains verified for the workspace", responses=WORKSPACE_ROLE)
async def list_domains(workspace_id: str, actor: ActorDep, plane: PlaneDep) -> dict[str, Any]:
    return {"data": await domains.list_domains(plane, actor, workspace_id)}


@router.put(
    DOMAINS + "/{domain}",
    summary="Verify an e-mail domain for the workspace (platform administrators)",
    responses={**WORKSPACE_ROLE, **errors(409)},
)
async def verify_domain(
    workspace_id: str, domain: str, actor: ActorDep, plane: PlaneDep
) -> dict[str, Any]:
    return one(await domains.verify_domain(plane, actor, workspace_id, domain))


@router.delete(
    DOMAINS + "/{domain}",
    status_code=204,
    summary="Withdraw a domain's verification (platform administrators)",
    responses=WORKSPACE_ROLE,
)
async def unverify_domain(
    workspace_id: str, domain: str, actor: ActorDep, plane: PlaneDep
) -> Response:
    await domains.unverify_domain(plane, actor, workspace_id, domain)
    return Response(status_code=204)
