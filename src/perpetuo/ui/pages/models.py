"""Models: every alias the workspace can call, with its deployments and live health, and
the forms to add, edit and delete the workspace's own aliases."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from fastapi.responses import Response

from perpetuo.control import credentials, models
from perpetuo.control.actor import Role
from perpetuo.control.models import ModelCreate, ModelSpec
from perpetuo.routing.table import Alias
from perpetuo.schema.errors import GatewayError
from perpetuo.ui.context import PageDep, WorkspacePage, show
from perpetuo.ui.forms import Errors, FormData, SessionForm, error_of, validate
from perpetuo.ui.lookups import DEMO_LABEL, demo_providers, is_demo
from perpetuo.ui.render import redirect

router = APIRouter(prefix="/ui/w/{workspace_id}/models")
STRATEGIES = ["default", "weighted", "fastest", "cheapest", "reliable", "least-busy"]
MAX_DEPLOYMENTS = 50


def _alias_view(
    alias: Alias | None, spec: dict[str, Any], health: dict[str, Any], names: dict[str, str]
) -> dict[str, Any]:
    """Deployments as configured, each with its live health when the alias is serving."""
    rows = []
    for dep in spec.get("deployments", []):
        source = dep.get("credential_id") or dep.get("provider")
        # Deployment ids are `provider/model`; a workspace's provider is its credential id.
        deployment_id = f"{source}/{dep.get('model')}" if alias is not None else None
        rows.append(
            {
                "source": names.get(source, source),
                "model": dep.get("model"),
                "priority": dep.get("priority", 0),
                "weight": dep.get("weight", 1.0),
                "health": health.get(deployment_id) if deployment_id else None,
            }
        )
    return {
        "deployments": rows,
        "demo": alias is not None and is_demo(alias),
        "strategy": spec.get("strategy", "default"),
        "fallbacks": spec.get("fallbacks", []),
        "description": spec.get("description"),
    }


async def _credential_names(page: WorkspacePage) -> dict[str, str]:
    listed = await credentials.list_credentials(
        page.plane, page.actor, page.id, limit=200, cursor=None
    )
    return {row.id: row.name for row in listed.rows}


@router.get("")
async def models_page(page: PageDep) -> Response:
    return await _list(page)


async def _list(page: WorkspacePage, status: int = 200, errors: Errors | None = None) -> Response:
    gateway = page.gateway
    listed = await models.list_models(page.plane, page.actor, page.id, limit=200, cursor=None)
    state = await gateway.workspace_routes.get(page.id)
    names = await _credential_names(page)
    demo = {p: f"{names.get(p, p)} ({DEMO_LABEL})" for p in await demo_providers(page)}
    names.update(demo)
    served = [*gateway.table.aliases.values(), *state.aliases.values()]
    health = gateway.router.state.snapshot(sorted({d.id for a in served for d in a.deployments}))
    own = []
    for row in sorted(listed.rows, key=lambda r: r.alias):
        view = models.model_view(row, state.disabled.get(row.alias))
        own.append({**view, **_alias_view(state.aliases.get(row.alias), row.spec, health, names)})
    platform = []
    for alias in sorted(gateway.table.aliases.values(), key=lambda a: a.name):
        spec = alias.config.model_dump(mode="json")
        shadowed = alias.name in state.aliases
        platform.append(
            {"alias": alias.name, "shadowed": shadowed, **_alias_view(alias, spec, health, demo)}
        )
    return show(
        page, "models.html", status, active="models", own=own, platform=platform, errors=errors
    )


def _deployment_rows(form: FormData) -> tuple[list[dict[str, Any]], list[int]]:
    """Filled rows of the deployments table, and the form index each came from."""
    rows, origin = [], []
    for index in range(MAX_DEPLOYMENTS):
        prefix = f"deployments.{index}."
        credential, model = form.get(prefix + "credential_id"), form.get(prefix + "model")
        if not credential and not model:
            continue
        row: dict[str, Any] = {"credential_id": credential, "model": model}
        for name in ("weight", "priority"):
            if form.get(prefix + name):
                row[name] = form.get(prefix + name)
        rows.append(row)
        origin.append(index)
    return rows, origin


def _renumber(errors: Errors, origin: list[int]) -> Errors:
    """Validation names rows by their place among the filled ones; the form by its own."""
    fixed = {}
    for field, message in errors.items():
        parts = field.split(".")
        if len(parts) > 1 and parts[0] == "deployments" and parts[1].isdigit():
            parts[1] = str(origin[int(parts[1])]) if int(parts[1]) < len(origin) else parts[1]
        fixed[".".join(parts)] = message
    return fixed


def _spec_data(form: FormData) -> tuple[dict[str, Any], list[int]]:
    rows, origin = _deployment_rows(form)
    return {
        "deployments": rows,
        "strategy": form.get("strategy") or "default",
        "fallbacks": form.lines("fallbacks") or [],
        "extra_params": form.lines("extra_params") or [],
        "description": form.optional("description"),
    }, origin


async def _form_page(
    page: WorkspacePage,
    editing: str | None,
    values: dict[str, Any],
    status: int = 200,
    errors: Errors | None = None,
) -> Response:
    names = await _credential_names(page)
    demo = {p: f"{names.get(p, p)} ({DEMO_LABEL})" for p in await demo_providers(page)}
    names.update(demo)
    rows = list(values.get("deployments") or [])
    rows += [{}] * max(2, 3 - len(rows))
    return show(
        page,
        "model_form.html",
        status,
        active="models",
        editing=editing,
        values=values,
        rows=rows,
        credential_choices=[("", "— choose —"), *names.items()],
        strategies=STRATEGIES,
        errors=errors or {},
    )


@router.get("/new")
async def new_page(page: PageDep) -> Response:
    page.require(Role.ADMIN)
    return await _form_page(page, None, {"strategy": "default"})


@router.get("/edit")
async def edit_page(page: PageDep, alias: str) -> Response:
    page.require(Role.ADMIN)
    row = await models.get_model(page.plane, page.actor, page.id, alias)
    return await _form_page(page, alias, dict(row.spec))


async def _save(page: WorkspacePage, form: FormData, editing: str | None) -> Response:
    errors: Errors = {}
    data, origin = _spec_data(form)
    spec: ModelSpec | None = None
    status = 422
    try:
        page.require(Role.ADMIN)
        if editing is None:
            created = validate(ModelCreate, {**data, "alias": form.get("alias")}, errors)
            if created is not None:
                await models.create_model(page.plane, page.actor, page.id, created)
            spec = created
        else:
            spec = validate(ModelSpec, data, errors)
            if spec is not None:
                await models.replace_model(page.plane, page.actor, page.id, editing, spec)
    except GatewayError as exc:
        errors, status = error_of(exc, "form"), exc.status
    if errors or spec is None:
        shown = {**data, "alias": form.get("alias")}
        return await _form_page(page, editing, shown, status, _renumber(errors, origin))
    alias = editing or form.get("alias")
    return redirect(page.request, page.url("models"), f"Alias {alias} saved.")


@router.post("")
async def create(page: PageDep, form: SessionForm) -> Response:
    return await _save(page, form, None)


@router.post("/update")
async def update(page: PageDep, form: SessionForm) -> Response:
    return await _save(page, form, form.get("alias"))


@router.post("/delete")
async def delete(page: PageDep, form: SessionForm) -> Response:
    alias = form.get("alias")
    try:
        page.require(Role.ADMIN)
        await models.delete_model(page.plane, page.actor, page.id, alias)
    except GatewayError as exc:
        return await _list(page, exc.status, {f"alias-{alias}": exc.message})
    return redirect(page.request, page.url("models"), f"Alias {alias} deleted.")
