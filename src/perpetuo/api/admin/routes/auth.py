"""/api/auth: sign up, sign in, refresh, sign out, and one's own account."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Body, Request, Response
from pydantic import BaseModel, ConfigDict, Field

from perpetuo.api.admin.deps import ActorDep, PlaneDep, client_ip
from perpetuo.api.admin.envelope import one
from perpetuo.api.admin.responses import errors
from perpetuo.auth.authenticator import bearer_token
from perpetuo.auth.tokens import InvalidToken, verify_access_token
from perpetuo.control import accounts as service
from perpetuo.control.sessions import ClientInfo

router = APIRouter(prefix="/api/auth", tags=["Accounts"])


class Logout(BaseModel):
    model_config = ConfigDict(extra="forbid")

    refresh_token: Annotated[str, Field(max_length=200)] | None = Field(
        default=None, description="Ends this token's session when no access token is sent"
    )


def _client(request: Request) -> ClientInfo:
    return ClientInfo(client_ip(request), request.headers.get("user-agent"))


def _session_id(request: Request) -> str | None:
    """The session of the request's access token (the signature is checked, not the session)."""
    token = bearer_token({k.lower(): v for k, v in request.headers.items()})
    if token is None:
        return None
    try:
        return verify_access_token(request.app.state.plane.keys.jwt_signing, token).session_id
    except InvalidToken:
        return None


@router.post(
    "/signup",
    status_code=201,
    summary="Create an account; returns tokens",
    responses=errors(403, 404, 409, 410, 422),
)
async def signup(body: service.UserCreate, plane: PlaneDep, request: Request) -> dict[str, Any]:
    return one(await service.signup(plane, body, _client(request)))


@router.post(
    "/login",
    summary="Sign in with email and password; returns tokens",
    responses=errors(401, 403, 422, 429),
)
async def login(body: service.Login, plane: PlaneDep, request: Request) -> dict[str, Any]:
    return one(await service.login(plane, body, _client(request)))


@router.post(
    "/refresh",
    summary="New tokens for a refresh token (which then stops working)",
    responses=errors(401, 422),
)
async def refresh(body: service.Refresh, plane: PlaneDep, request: Request) -> dict[str, Any]:
    return one(await service.refresh(plane, body, _client(request)))


@router.post(
    "/logout",
    status_code=204,
    summary="Sign out: end the session",
    responses=errors(401, 422),
)
async def logout(
    plane: PlaneDep, request: Request, body: Annotated[Logout | None, Body()] = None
) -> Response:
    refresh_token = body.refresh_token if body else None
    await service.logout(plane, _session_id(request), refresh_token)
    return Response(status_code=204)


@router.get("/me", summary="The signed-in account and its workspaces", responses=errors(401))
async def get_me(actor: ActorDep, plane: PlaneDep) -> dict[str, Any]:
    return one(await service.me(plane, actor))


@router.patch(
    "/me",
    summary="Change one's name or password (ends one's other sessions)",
    responses=errors(401, 403, 422, 429),
)
async def update_me(
    body: service.ProfileUpdate, actor: ActorDep, plane: PlaneDep
) -> dict[str, Any]:
    return one(await service.update_me(plane, actor, body, actor.session_id))
