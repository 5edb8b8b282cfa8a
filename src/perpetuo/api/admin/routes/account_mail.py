"""/api/auth/verify-email, /api/auth/password-reset, /api/auth/me/mail-preferences and
/api/mail/unsubscribe: what people do with the mail the server sends them."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request, Response

from perpetuo.api.admin.deps import ActorDep, PlaneDep, client_ip
from perpetuo.api.admin.envelope import one
from perpetuo.api.admin.responses import errors
from perpetuo.control import email_verification, mail_preferences, password_reset
from perpetuo.control.actor import Actor
from perpetuo.control.sessions import ClientInfo

router = APIRouter(tags=["Accounts"])


def _client(request: Request) -> ClientInfo:
    return ClientInfo(client_ip(request), request.headers.get("user-agent"))


def _anonymous(request: Request) -> Actor:
    return Actor(kind="system", ip=client_ip(request), user_agent=request.headers.get("user-agent"))


@router.post(
    "/api/auth/verify-email",
    summary="Confirm an e-mail address with the token from the verification mail",
    responses=errors(410, 422),
)
async def verify_email(
    body: email_verification.VerifyEmail, plane: PlaneDep, request: Request
) -> dict[str, Any]:
    return one(await email_verification.verify(plane, body, _anonymous(request)))


@router.post(
    "/api/auth/verify-email/resend",
    status_code=202,
    summary="Mail another verification link to the signed-in person",
    responses=errors(401, 403, 409, 429),
)
async def resend_verification(actor: ActorDep, plane: PlaneDep) -> dict[str, Any]:
    return one(await email_verification.resend(plane, actor))


@router.post(
    "/api/auth/password-reset",
    status_code=202,
    summary="Mail a password-reset link (the answer is the same for unknown addresses)",
    responses=errors(403, 422),
)
async def request_password_reset(
    body: password_reset.ResetRequest, plane: PlaneDep, request: Request
) -> dict[str, Any]:
    await password_reset.request_reset(plane, body, _client(request))
    return one(
        {
            "object": "password_reset",
            "message": "If an account has this address, a reset link is on its way.",
        }
    )


@router.post(
    "/api/auth/password-reset/confirm",
    status_code=204,
    summary="Set a new password with the token from the reset mail (ends every session)",
    responses=errors(410, 422),
)
async def confirm_password_reset(
    body: password_reset.PasswordReset, plane: PlaneDep, request: Request
) -> Response:
    await password_reset.reset_password(plane, body, _client(request))
    return Response(status_code=204)


@router.get(
    "/api/auth/me/mail-preferences",
    summary="Which kinds of non-transactional mail one gets",
    responses=errors(401, 403),
)
async def get_mail_preferences(actor: ActorDep, plane: PlaneDep) -> dict[str, Any]:
    return one(await mail_preferences.preferences(plane, actor))


@router.patch(
    "/api/auth/me/mail-preferences",
    summary="Turn kinds of non-transactional mail on or off",
    responses=errors(401, 403, 422),
)
async def update_mail_preferences(
    body: mail_preferences.PreferencesUpdate, actor: ActorDep, plane: PlaneDep
) -> dict[str, Any]:
    return one(await mail_preferences.update_preferences(plane, actor, body))


@router.post(
    "/api/mail/unsubscribe",
    summary="One-click unsubscribe (RFC 8058) with the signed token of a mail's link",
    responses=errors(422),
)
async def unsubscribe(token: str, plane: PlaneDep, request: Request) -> dict[str, Any]:
    # Mail providers POST `List-Unsubscribe=One-Click` as a form: the body is not needed.
    return one(await mail_preferences.unsubscribe(plane, token, _anonymous(request)))
