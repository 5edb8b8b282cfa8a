"""Provider credentials (bring your own key): add, test the connection, list masked, delete,
and list a credential's models (model discovery) to create aliases for them in one click."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from fastapi.responses import Response

from perpetuo.control import credentials, models
from perpetuo.control.actor import Role
from perpetuo.control.connection_test import test_connection
from perpetuo.control.credentials import CredentialCreate
from perpetuo.control.model_discovery import discover_for_credential
from perpetuo.control.models import ModelCreate
from perpetuo.metering.pricing import default_catalog
from perpetuo.schema.errors import GatewayError
from perpetuo.ui.context import PageDep, WorkspacePage, show
from perpetuo.ui.forms import Errors, SessionForm, error_of, validate
from perpetuo.ui.render import redirect

router = APIRouter(prefix="/ui/w/{workspace_id}/providers")


async def _page(page: WorkspacePage, status: int = 200, **context: Any) -> Response:
    listed = await credentials.list_credentials(
        page.plane, page.actor, page.id, limit=200, cursor=None
    )
    context.setdefault("form", {})
    return show(
        page,
        "providers.html",
        status,
        active="providers",
        credentials=[credentials.credential_view(row) for row in listed.rows],
        provider_types=credentials.provider_types(),
        encryption_ready=page.plane.keyring is not None,
        **context,
    )


@router.get("")
async def providers_page(page: PageDep) -> Response:
    return await _page(page)


async def _test(page: WorkspacePage, credential_id: str) -> dict[str, Any]:
    row, secret = await credentials.load_secret(page.plane, page.actor, page.id, credential_id)
    return await test_connection(page.gateway.client, row, secret, page.gateway.plane.egress)


@router.post("")
async def add(page: PageDep, form: SessionForm) -> Response:
    errors: Errors = {}
    data = {
        "name": form.get("name"),
        "provider_type": form.get("provider_type"),
        "api_key": form.get("api_key"),
        "api_base": form.optional("api_base"),
        "api_version": form.optional("api_version"),
    }
    kept = {k: v for k, v in form.values.items() if k != "api_key"}  # never echo the secret
    try:
        page.require(Role.ADMIN)
        spec = validate(CredentialCreate, data, errors)
        if spec is None:
            return await _page(page, 422, errors=errors, form=kept)
        view = await credentials.create_credential(page.plane, page.actor, page.id, spec)
        result = await _test(page, view["id"]) if form.checked("test") else None
    except GatewayError as exc:
        return await _page(page, exc.status, errors=error_of(exc, "add"), form=kept)
    notice = f"Credential {view['name']} saved."
    if result is not None:
        verdict = "Connection OK" if result["ok"] else "Connection test failed"
        notice += f" {verdict}: {result['message']}"
    return redirect(page.request, page.url("providers"), notice)


@router.post("/{credential_id}/test")
async def test(page: PageDep, credential_id: str, form: SessionForm) -> Response:
    try:
        page.require(Role.ADMIN)
        result = await _test(page, credential_id)
    except GatewayError as exc:
        return await _page(page, exc.status, errors={f"cred-{credential_id}": exc.message})
    return await _page(page, tested={"id": credential_id, **result})


@router.post("/{credential_id}/delete")
async def delete(page: PageDep, credential_id: str, form: SessionForm) -> Response:
    try:
        page.require(Role.ADMIN)
        await credentials.delete_credential(page.plane, page.actor, page.id, credential_id)
    except GatewayError as exc:
        return await _page(page, exc.status, errors={f"cred-{credential_id}": exc.message})
    return redirect(page.request, page.url("providers"), "The credential was deleted.")


@router.post("/{credential_id}/models")
async def discover(page: PageDep, credential_id: str, form: SessionForm) -> Response:
    """The credential's models from the provider's own list, each with an alias to create."""
    match = (form.get("match") or "").strip().lower()
    try:
        page.require(Role.ADMIN)
        row, secret = await credentials.load_secret(page.plane, page.actor, page.id, credential_id)
        found = await discover_for_credential(
            page.gateway.client, row, secret, page.gateway.plane.egress, default_catalog()
        )
        listed = await models.list_models(page.plane, page.actor, page.id, limit=200, cursor=None)
    except GatewayError as exc:
        # The provider's refusal is shown on the page, as a failed connection test is.
        status = 200 if exc.status == 502 else exc.status
        return await _page(page, status, errors={f"cred-{credential_id}": exc.message})
    existing = {r.alias for r in listed.rows}
    shown = [
        {**proposal, "exists": proposal["alias"] in existing}
        for proposal in found
        if not match or match in proposal["model"].lower()
    ]
    discovered = {"id": credential_id, "models": shown, "match": match, "total": len(found)}
    return await _page(page, discovered=discovered)


@router.post("/{credential_id}/aliases")
async def add_alias(page: PageDep, credential_id: str, form: SessionForm) -> Response:
    """An alias for one discovered model, on this credential."""
    alias, model = form.get("alias"), form.get("model")
    errors: Errors = {}
    data = {"alias": alias, "deployments": [{"credential_id": credential_id, "model": model}]}
    try:
        page.require(Role.ADMIN)
        spec = validate(ModelCreate, data, errors)
        if spec is None:
            message = "; ".join(errors.values())
            return await _page(page, 422, errors={f"cred-{credential_id}": message})
        await models.create_model(page.plane, page.actor, page.id, spec)
    except GatewayError as exc:
        return await _page(page, exc.status, errors={f"cred-{credential_id}": exc.message})
    return redirect(page.request, page.url("models"), f"Alias {alias} created for {model}.")
