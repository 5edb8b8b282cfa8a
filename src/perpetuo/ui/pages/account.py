"""One's own account in the dashboard: mail preferences, confirming the e-mail address, and
the pages mailed links lead to (forgotten password, reset, verification, unsubscribe),
which need no session."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import Response

from perpetuo.control import email_verification, mail_preferences, password_reset
from perpetuo.control.actor import Actor
from perpetuo.control.mail.catalog import CATEGORIES
from perpetuo.control.sessions import ClientInfo
from perpetuo.schema.errors import GatewayError
from perpetuo.ui.forms import Errors, PresessionForm, SessionForm, error_of, validate
from perpetuo.ui.pages.auth import auth_page
from perpetuo.ui.render import redirect, render
from perpetuo.ui.session import VisitorDep, client_ip, find_visitor, plane_of

router = APIRouter()


def _client(request: Request) -> ClientInfo:
    return ClientInfo(client_ip(request), request.headers.get("user-agent"))


def _anonymous(request: Request) -> Actor:
    return Actor(kind="system", ip=client_ip(request), user_agent=request.headers.get("user-agent"))


@router.get("/ui/account")
async def account(request: Request, visitor: VisitorDep) -> Response:
    prefs = await mail_preferences.preferences(plane_of(request), visitor.actor)
    return render(
        request,
        "account.html",
        visitor=visitor,
        csrf=visitor.csrf,
        prefs=prefs,
        mail_enabled=plane_of(request).mail.enabled,
    )


@router.post("/ui/account/mail")
async def save_mail(request: Request, visitor: VisitorDep, form: SessionForm) -> Response:
    wanted = {category: form.checked(f"mail.{category}") for category in CATEGORIES}
    spec = mail_preferences.PreferencesUpdate(categories=wanted)
    await mail_preferences.update_preferences(plane_of(request), visitor.actor, spec)
    return redirect(request, "/ui/account", "Your mail preferences are saved.")


@router.post("/ui/verify-email/resend")
async def resend(request: Request, visitor: VisitorDep, form: SessionForm) -> Response:
    back = request.headers.get("referer") or "/ui"
    target = back if back.startswith(str(request.base_url).rstrip("/") + "/ui") else "/ui"
    try:
        await email_verification.resend(plane_of(request), visitor.actor)
    except GatewayError as exc:
        return redirect(request, target, exc.message)
    return redirect(request, target, f"A new link is on its way to {visitor.email}.")


@router.get("/ui/verify-email")
async def verify(request: Request, token: str = "") -> Response:
    """The mailed link: opening it is the confirmation (no session needed)."""
    visitor = await find_visitor(request)
    errors: Errors = {}
    spec = validate(email_verification.VerifyEmail, {"token": token}, errors)
    status, email = 200, None
    if spec is not None:
        try:
            done = await email_verification.verify(plane_of(request), spec, _anonymous(request))
            email = done["email"]
        except GatewayError as exc:
            status, errors = exc.status, error_of(exc, "form")
    else:
        status, errors = 422, {"form": "This link is not complete: copy the whole address."}
    context = {"email": email, "errors": errors, "visitor": visitor}
    return auth_page(request, "verify_email.html", status, **context)


@router.get("/ui/forgot-password")
async def forgot_page(request: Request) -> Response:
    return auth_page(request, "forgot_password.html", form={}, sent=False)


@router.post("/ui/forgot-password")
async def forgot(request: Request, form: PresessionForm) -> Response:
    errors: Errors = {}
    spec = validate(password_reset.ResetRequest, {"email": form.get("email")}, errors)
    status = 422
    if spec is not None:
        try:
            await password_reset.request_reset(plane_of(request), spec, _client(request))
            return auth_page(request, "forgot_password.html", form=form.values, sent=True)
        except GatewayError as exc:
            status, errors = exc.status, error_of(exc, "form")
    return auth_page(
        request, "forgot_password.html", status, form=form.values, sent=False, errors=errors
    )


@router.get("/ui/reset-password")
async def reset_page(request: Request, token: str = "") -> Response:
    return auth_page(request, "reset_password.html", token=token)


@router.post("/ui/reset-password")
async def reset(request: Request, form: PresessionForm) -> Response:
    errors: Errors = {}
    data = {"token": form.get("token"), "password": form.get("password")}
    spec = validate(password_reset.PasswordReset, data, errors)
    status = 422
    if spec is not None:
        try:
            await password_reset.reset_password(plane_of(request), spec, _client(request))
            return redirect(request, "/ui/login", "Your password is changed: sign in with it.")
        except GatewayError as exc:
            status, errors = exc.status, error_of(exc, "form")
    return auth_page(request, "reset_password.html", status, token=form.get("token"), errors=errors)


@router.get("/ui/unsubscribe")
async def unsubscribe_page(request: Request, token: str = "") -> Response:
    """A page with one button: mail scanners open links, so a GET changes nothing."""
    return auth_page(request, "unsubscribe.html", token=token, done=None)


@router.post("/ui/unsubscribe")
async def unsubscribe(request: Request, form: PresessionForm) -> Response:
    token = form.get("token")
    try:
        done = await mail_preferences.unsubscribe(plane_of(request), token, _anonymous(request))
    except GatewayError as exc:
        return auth_page(
            request, "unsubscribe.html", 422, token=token, done=None, errors=error_of(exc, "form")
        )
    return auth_page(request, "unsubscribe.html", token=token, done=done["unsubscribed_label"])
