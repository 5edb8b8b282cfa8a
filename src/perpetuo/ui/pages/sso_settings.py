"""A workspace's single sign-on (admins): its identity providers (add, change, test,
remove), the domains they sign in and whether those are verified; platform administrators
verify or withdraw a domain here."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from fastapi.responses import Response

from perpetuo.control.actor import Role
from perpetuo.control.sso import admin, domains
from perpetuo.control.sso.check import check_provider
from perpetuo.control.sso.roles import role_names
from perpetuo.schema.errors import GatewayError
from perpetuo.ui.context import PageDep, WorkspacePage, show
from perpetuo.ui.forms import Errors, FormData, SessionForm, error_of, validate
from perpetuo.ui.render import redirect

router = APIRouter(prefix="/ui/w/{workspace_id}/sso")


async def _page(page: WorkspacePage, status: int = 200, **context: Any) -> Response:
    page.require(Role.ADMIN)
    context.setdefault("form", {})
    return show(
        page,
        "sso_settings.html",
        status,
        active="sso",
        providers=await admin.list_providers(page.plane, page.actor, page.id),
        verified=await domains.list_domains(page.plane, page.actor, page.id),
        roles=role_names(),
        encryption_ready=page.plane.keyring is not None,
        base_url=page.plane.sso.base_url,
        mapping_text=mapping_text,
        **context,
    )


def mapping_text(mapping: dict[str, str]) -> str:
    return "\n".join(f"{group} = {role}" for group, role in mapping.items())


def _mapping(form: FormData, errors: Errors) -> dict[str, str]:
    """`group = role` per line (a group may contain spaces; the role is after the last =)."""
    mapping: dict[str, str] = {}
    for line in form.get("role_mapping").splitlines():
        if not line.strip():
            continue
        group, sep, role = line.rpartition("=")
        if not sep or not group.strip() or not role.strip():
            errors["role_mapping"] = "Write one mapping per line, like: engineering = member"
            continue
        mapping[group.strip()] = role.strip().lower()
    return mapping


def _rules(form: FormData, errors: Errors) -> dict[str, Any]:
    return {
        "domains": form.lines("domains") or [],
        "groups_claim": form.get("groups_claim") or "groups",
        "role_mapping": _mapping(form, errors),
        "default_role": form.get("default_role") or "member",
        "unmapped_groups": form.get("unmapped_groups") or "refuse",
        "jit": form.checked("jit"),
        "sso_required": form.checked("sso_required"),
        "enabled": form.checked("enabled"),
        "token_auth_method": form.get("token_auth_method") or "client_secret_basic",
        "scopes": (form.get("scopes").split() or None) if form.get("scopes") else None,
    }


def _kept(form: FormData) -> dict[str, str]:
    return {k: v for k, v in form.values.items() if k != "client_secret"}  # never echoed


@router.get("")
async def sso_page(page: PageDep) -> Response:
    return await _page(page)


@router.post("")
async def add(page: PageDep, form: SessionForm) -> Response:
    errors: Errors = {}
    data = {
        "name": form.get("name"),
        "type": form.get("type") or "oidc",
        "issuer": form.optional("issuer"),
        "client_id": form.get("client_id"),
        "client_secret": form.get("client_secret"),
        **_rules(form, errors),
    }
    try:
        page.require(Role.ADMIN)
        spec = validate(admin.SsoProviderCreate, data, errors)
        if spec is None or errors:
            return await _page(page, 422, errors=errors, form=_kept(form))
        view = await admin.create_provider(page.plane, page.actor, page.id, spec)
    except GatewayError as exc:
        return await _page(page, exc.status, errors=error_of(exc, "add"), form=_kept(form))
    return redirect(page.request, page.url("sso"), f"Sign-in provider {view['name']} added.")


@router.post("/domains")
async def verify(page: PageDep, form: SessionForm) -> Response:
    try:
        await domains.verify_domain(page.plane, page.actor, page.id, form.get("domain"))
    except GatewayError as exc:
        return await _page(page, exc.status, errors=error_of(exc, "domains"))
    return redirect(page.request, page.url("sso"), f"Domain {form.get('domain')} verified.")


@router.post("/domains/remove")
async def unverify(page: PageDep, form: SessionForm) -> Response:
    try:
        await domains.unverify_domain(page.plane, page.actor, page.id, form.get("domain"))
    except GatewayError as exc:
        return await _page(page, exc.status, errors=error_of(exc, "domains"))
    return redirect(page.request, page.url("sso"), f"Domain {form.get('domain')} withdrawn.")


@router.post("/{provider_id}")
async def update(page: PageDep, provider_id: str, form: SessionForm) -> Response:
    errors: Errors = {}
    data = {
        "name": form.get("name") or None,
        "issuer": form.optional("issuer"),
        "client_id": form.get("client_id") or None,
        "client_secret": form.optional("client_secret"),
        **_rules(form, errors),
    }
    key = f"p-{provider_id}"
    try:
        page.require(Role.ADMIN)
        spec = validate(admin.SsoProviderUpdate, data, errors)
        if spec is None or errors:
            message = "; ".join(f"{k}: {v}" for k, v in errors.items())
            return await _page(page, 422, errors={key: message})
        await admin.update_provider(page.plane, page.actor, page.id, provider_id, spec)
    except GatewayError as exc:
        return await _page(page, exc.status, errors=error_of(exc, key))
    return redirect(page.request, page.url("sso"), "Sign-in provider saved.")


@router.post("/{provider_id}/test")
async def test(page: PageDep, provider_id: str, form: SessionForm) -> Response:
    try:
        page.require(Role.ADMIN)
        result = await check_provider(page.plane, page.actor, page.id, provider_id)
    except GatewayError as exc:
        return await _page(page, exc.status, errors=error_of(exc, f"p-{provider_id}"))
    return await _page(page, tested={"id": provider_id, **result})


@router.post("/{provider_id}/delete")
async def delete(page: PageDep, provider_id: str, form: SessionForm) -> Response:
    try:
        page.require(Role.ADMIN)
        await admin.delete_provider(page.plane, page.actor, page.id, provider_id)
    except GatewayError as exc:
        return await _page(page, exc.status, errors=error_of(exc, f"p-{provider_id}"))
    return redirect(page.request, page.url("sso"), "Sign-in provider removed.")
