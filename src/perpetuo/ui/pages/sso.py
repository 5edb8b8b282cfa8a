"""Signing in through an identity provider: the start (a redirect to the provider, with the
browser bound to the sign-in by a cookie), the provider's answer, and finding a person's
provider from their work address.

The start is a link, never a form: the pages' Content-Security-Policy allows forms to post
only here, and browsers apply that to a form's redirects too.
"""

from __future__ import annotations

import secrets
from urllib.parse import quote

from fastapi import APIRouter, Request
from fastapi.responses import RedirectResponse, Response

from perpetuo.control.errors import not_found
from perpetuo.control.sessions import ClientInfo
from perpetuo.control.sso import flow, provision
from perpetuo.schema.errors import ErrorType, GatewayError
from perpetuo.ui.forms import PresessionForm
from perpetuo.ui.pages.auth import auth_page, login_context, signed_in_response
from perpetuo.ui.security import set_cookie
from perpetuo.ui.session import client_ip, plane_of, safe_next

router = APIRouter(prefix="/ui/sso")
BROWSER_COOKIE = "perpetuo_sso"  # binds a sign-in in flight to this browser
BROWSER_TTL = 3600


async def login_error(
    request: Request,
    exc: GatewayError,
    field: str = "form",
    next_path: str | None = None,
    **form: str,
) -> Response:
    """The sign-in page again, saying why; `next_path` survives so a retry lands there."""
    context = await login_context(request)
    errors = {field: exc.message}
    return auth_page(
        request, "login.html", exc.status, next=next_path, form=form, errors=errors, **context
    )


@router.get("/{key}/start")
async def start(request: Request, key: str, next: str | None = None) -> Response:
    plane = plane_of(request)
    spec = await plane.sso.find(plane, key)
    if spec is None:
        raise not_found("Sign-in provider")
    browser = request.cookies.get(BROWSER_COOKIE) or secrets.token_urlsafe(32)
    try:
        url = await flow.start(plane, spec, browser, safe_next(next))
    except GatewayError as exc:
        return await login_error(request, exc, next_path=safe_next(next))
    response = RedirectResponse(url, status_code=303)
    set_cookie(response, request, BROWSER_COOKIE, browser, max_age=BROWSER_TTL)
    return response


@router.get("/{key}/callback")
async def callback(request: Request, key: str) -> Response:
    plane = plane_of(request)
    spec = await plane.sso.find(plane, key)
    if spec is None:
        raise not_found("Sign-in provider")
    client = ClientInfo(client_ip(request), request.headers.get("user-agent"))
    answer = dict(request.query_params)
    try:
        identity = await flow.finish(plane, spec, request.cookies.get(BROWSER_COOKIE), answer)
        signed = await provision.sign_in(plane, spec, identity, client)
    except GatewayError as exc:
        return await login_error(request, exc)
    home = f"/ui/w/{signed.workspace_id}" if signed.workspace_id else "/ui"
    return signed_in_response(request, signed.tokens.refresh_token, identity.next_path or home)


@router.post("/find")
async def find(request: Request, form: PresessionForm) -> Response:
    plane = plane_of(request)
    email = form.get("sso_email").lower()
    target = safe_next(form.get("next"))
    spec = await plane.sso.for_email(plane, email) if "@" in email else None
    if spec is None:
        missing = GatewayError(
            404, "No single sign-on is set up for this address.", type=ErrorType.NOT_FOUND
        )
        return await login_error(request, missing, "sso", target, sso_email=email)
    start_url = f"/ui/sso/{spec.key}/start"
    if target:
        start_url += f"?next={quote(target, safe='')}"
    return auth_page(request, "sso_continue.html", provider=spec, email=email, start_url=start_url)
