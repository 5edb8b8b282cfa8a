"""Sign up, sign in, sign out, accepting an invitation, and where /ui itself leads.

Signing out of a session that came from an identity provider also signs out there when the
provider offers it (OpenID Connect RP-initiated logout): a page here sends the browser on."""

from __future__ import annotations

import secrets

from fastapi import APIRouter, Request
from fastapi.responses import Response
from sqlalchemy import select

from perpetuo.control import accounts, sessions
from perpetuo.control.accounts import Login, UserCreate
from perpetuo.control.errors import invalid
from perpetuo.control.invites import InviteAccept, accept_invite
from perpetuo.control.sessions import ClientInfo
from perpetuo.control.sso.logout import provider_logout
from perpetuo.schema.errors import GatewayError
from perpetuo.store.sso_tables import sso_providers
from perpetuo.ui import referral_link
from perpetuo.ui.forms import Errors, PresessionForm, SessionForm, error_of, validate
from perpetuo.ui.render import redirect, render
from perpetuo.ui.security import PRESESSION_COOKIE, SESSION_COOKIE, clear_cookie, set_cookie
from perpetuo.ui.session import VisitorDep, client_ip, find_visitor, plane_of, safe_next

router = APIRouter()


@router.get("/ui")
@router.get("/ui/")
async def home(request: Request) -> Response:
    visitor = await find_visitor(request)
    if visitor is None:
        return redirect(request, "/ui/login")
    if visitor.memberships:
        return redirect(request, f"/ui/w/{visitor.memberships[0].workspace_id}")
    return redirect(request, "/ui/workspaces")


def auth_page(request: Request, template: str, status: int = 200, **context: object) -> Response:
    """A page for people not signed in (sign in, sign up, mailed links), with the
    double-submit token its form's POST must echo."""
    token = request.cookies.get(PRESESSION_COOKIE) or secrets.token_urlsafe(32)
    context.setdefault("visitor", None)
    response = render(request, template, status, csrf=token, **context)
    if PRESESSION_COOKIE not in request.cookies:
        set_cookie(response, request, PRESESSION_COOKIE, token, max_age=24 * 3600)
    return response


async def login_context(request: Request) -> dict[str, object]:
    """What the sign-in page shows of single sign-on: the platform's provider buttons, and
    the work-address form when some workspace or domain has a provider."""
    plane = plane_of(request)
    by_domain = any(spec.domains for spec in plane.sso.platform.values())
    if not by_domain:
        async with plane.db.connect() as conn:
            found = await conn.scalar(
                select(sso_providers.c.id).where(sso_providers.c.enabled).limit(1)
            )
        by_domain = found is not None
    return {"sso_providers": plane.sso.buttons(), "sso_by_domain": by_domain}


def signed_in_response(request: Request, refresh_token: str, target: str | None) -> Response:
    response = redirect(request, target or "/ui")
    ttl = int(plane_of(request).tokens.refresh_ttl)
    set_cookie(response, request, SESSION_COOKIE, refresh_token, max_age=ttl)
    return response


def _client(request: Request) -> ClientInfo:
    return ClientInfo(client_ip(request), request.headers.get("user-agent"))


@router.get("/ui/login")
async def login_page(request: Request, next: str | None = None) -> Response:
    sso = await login_context(request)
    return auth_page(request, "login.html", next=safe_next(next), form={}, **sso)


@router.post("/ui/login")
async def login(request: Request, form: PresessionForm) -> Response:
    target = safe_next(form.get("next"))
    errors: Errors = {}
    refusal: GatewayError | None = None
    spec = validate(Login, {"email": form.get("email"), "password": form.get("password")}, errors)
    if spec is not None:
        try:
            tokens = await accounts.login(plane_of(request), spec, _client(request))
            return signed_in_response(request, tokens["refresh_token"], target)
        except GatewayError as exc:
            errors, refusal = error_of(exc, "form"), exc
    status = 429 if "Too many" in errors.get("form", "") else 401 if spec else 422
    if refusal is not None and refusal.code == "sso_required":
        status = 403
    sso = await login_context(request)
    return auth_page(
        request, "login.html", status, next=target, form=form.values, errors=errors, **sso
    )


@router.get("/ui/signup")
async def signup_page(
    request: Request, invite: str | None = None, email: str = "", ref: str | None = None
) -> Response:
    page = auth_page(request, "signup.html", form={"invite_token": invite or "", "email": email})
    return referral_link.remember(request, page, ref)


@router.post("/ui/signup")
async def signup(request: Request, form: PresessionForm) -> Response:
    errors: Errors = {}
    data = {
        "email": form.get("email"),
        "password": form.get("password"),
        "name": form.get("name"),
        "invite_token": form.optional("invite_token"),
    }
    spec = validate(UserCreate, data, errors)
    if spec is not None:
        try:
            tokens = await accounts.signup(plane_of(request), spec, _client(request))
            return signed_in_response(request, tokens["refresh_token"], "/ui")
        except GatewayError as exc:
            errors = error_of(exc, "form")
    return auth_page(request, "signup.html", 422, form=form.values, errors=errors)


@router.post("/ui/logout")
async def logout(request: Request, visitor: VisitorDep, form: SessionForm) -> Response:
    plane = plane_of(request)
    async with plane.db.begin() as conn:
        await sessions.revoke(conn, visitor.session_id)
    elsewhere = await provider_logout(plane, visitor.session_id)
    if elsewhere is None:
        response = redirect(request, "/ui/login", "You are signed out.")
    else:
        url, name = elsewhere
        response = auth_page(request, "signed_out.html", provider_logout=url, provider_name=name)
    clear_cookie(response, request, SESSION_COOKIE)
    return response


@router.get("/ui/invite")
async def invite_page(request: Request, token: str = "") -> Response:
    visitor = await find_visitor(request)
    if visitor is None:
        return auth_page(request, "invite.html", token=token, form={})
    return render(request, "invite.html", token=token, visitor=visitor, csrf=visitor.csrf)


@router.post("/ui/invites/accept")
async def accept(request: Request, visitor: VisitorDep, form: SessionForm) -> Response:
    token = form.get("token")
    errors: Errors = {}
    spec = validate(InviteAccept, {"token": token}, errors)
    try:
        if spec is None:
            raise invalid("Paste the invitation token you were sent.", "token")
        workspace = await accept_invite(plane_of(request), visitor.actor, spec)
    except GatewayError as exc:
        return render(
            request,
            "invite.html",
            exc.status,
            token=token,
            visitor=visitor,
            csrf=visitor.csrf,
            errors=error_of(exc, "form"),
        )
    return redirect(request, f"/ui/w/{workspace['id']}", f"Welcome to {workspace['name']}.")
