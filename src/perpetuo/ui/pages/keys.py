"""API keys: create (shown once, with a copy button), list, edit restrictions and limits,
rotate and revoke. Members manage their own keys; admins and owners manage every key."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from fastapi.responses import Response

from perpetuo.control import api_keys, members
from perpetuo.control.actor import Role
from perpetuo.control.api_keys import SCOPES, KeyCreate, KeyUpdate
from perpetuo.schema.errors import GatewayError
from perpetuo.ui.budget import PERIOD_CHOICES
from perpetuo.ui.context import PageDep, WorkspacePage, show
from perpetuo.ui.forms import Errors, FormData, SessionForm, error_of, validate
from perpetuo.ui.lookups import alias_names, team_names
from perpetuo.ui.render import redirect

router = APIRouter(prefix="/ui/w/{workspace_id}/keys")
LIMIT_FIELDS = ("rpm", "tpm", "max_parallel", "daily_tokens", "monthly_tokens")


async def _aliases(page: WorkspacePage) -> list[str]:
    state = await page.gateway.workspace_routes.get(page.id)
    return sorted({*page.gateway.table.aliases, *state.aliases, *state.disabled})


def _may_manage(page: WorkspacePage, key: dict[str, Any]) -> bool:
    return page.role >= Role.ADMIN or (
        page.role >= Role.MEMBER and key["owner_id"] == page.visitor.user_id
    )


async def _list(page: WorkspacePage, status: int = 200, **context: Any) -> Response:
    cursor = page.request.query_params.get("cursor")
    listed = await api_keys.list_keys(page.plane, page.actor, page.id, limit=100, cursor=cursor)
    people = await members.list_members(page.plane, page.actor, page.id, limit=200, cursor=None)
    emails = {row.id: row.email for row in people.rows}
    keys = [api_keys.key_view(row) for row in listed.rows]
    context.setdefault("values", {"scopes": list(SCOPES)})
    return show(
        page,
        "keys.html",
        status,
        active="keys",
        keys=[
            {**k, "owner": emails.get(k["owner_id"]), "manage": _may_manage(page, k)} for k in keys
        ],
        next_cursor=listed.next_cursor,
        environments=[
            (name, f"{name} (pk_{name}_…)") for name in page.plane.api_keys.all_environments
        ],
        aliases=await _aliases(page),
        scopes=SCOPES,
        periods=PERIOD_CHOICES,
        **context,
    )


@router.get("")
async def keys_page(page: PageDep) -> Response:
    return await _list(page)


def _key_data(form: FormData, errors: Errors) -> dict[str, Any]:
    """The form as KeyCreate/KeyUpdate fields; blanks mean "no restriction"."""
    limits: dict[str, Any] = {name: form.integer(f"limits.{name}", errors) for name in LIMIT_FIELDS}
    for name in ("budget_usd", "budget_soft_usd"):
        limits[name] = form.number(f"limits.{name}", errors)
    limits["budget_period"] = form.optional("limits.budget_period")
    return {
        "name": form.get("name"),
        "scopes": form.getlist("scopes"),
        "allowed_models": form.getlist("allowed_models") or None,
        "ip_allowlist": form.lines("ip_allowlist"),
        "referer_domains": form.lines("referer_domains"),
        "expires_at": form.optional("expires_at"),
        "limits": {k: v for k, v in limits.items() if v is not None},
    }


def _values(form: FormData) -> dict[str, Any]:
    """What to show again in a form that was refused."""
    values: dict[str, Any] = dict(form.values)
    values["scopes"] = form.getlist("scopes")
    values["allowed_models"] = form.getlist("allowed_models")
    return values


@router.post("")
async def create(page: PageDep, form: SessionForm) -> Response:
    errors: Errors = {}
    data = {**_key_data(form, errors), "environment": form.get("environment") or "live"}
    try:
        page.require(Role.MEMBER)
        spec = validate(KeyCreate, data, errors)
        if spec is None:
            return await _list(page, 422, errors=errors, values=_values(form))
        view, plaintext = await api_keys.create_key(page.plane, page.actor, page.id, spec)
    except GatewayError as exc:
        return await _list(page, exc.status, errors=error_of(exc, "create"), values=_values(form))
    return await _show_created(page, view, plaintext, rotated=False)


def _edit_values(key: dict[str, Any]) -> dict[str, Any]:
    values: dict[str, Any] = {
        "name": key["name"],
        "scopes": key["scopes"],
        "allowed_models": key["allowed_models"] or [],
        "ip_allowlist": "\n".join(key["ip_allowlist"] or []),
        "referer_domains": "\n".join(key["referer_domains"] or []),
        "expires_at": (key["expires_at"] or "")[:16],
    }
    for name, value in (key["limits"] or {}).items():
        values[f"limits.{name}"] = value
    values["team_id"] = key["team_id"] or ""
    return values


def _by_name(item: tuple[str, str]) -> str:
    return item[1].lower()


async def _edit(page: WorkspacePage, key_id: str, status: int = 200, **context: Any) -> Response:
    key = await api_keys.get_key(page.plane, page.actor, page.id, key_id)
    context.setdefault("values", _edit_values(key))
    names = await team_names(page)
    return show(
        page,
        "key_edit.html",
        status,
        active="keys",
        key=key,
        manage=_may_manage(page, key),
        aliases=await _aliases(page),
        scopes=SCOPES,
        periods=PERIOD_CHOICES,
        team_name=names.get(key["team_id"] or ""),
        teams=[("", "None of its own: its owner's team"), *sorted(names.items(), key=_by_name)],
        **context,
    )


@router.get("/{key_id}")
async def edit_page(page: PageDep, key_id: str) -> Response:
    return await _edit(page, key_id)


@router.post("/{key_id}")
async def update(page: PageDep, key_id: str, form: SessionForm) -> Response:
    errors: Errors = {}
    try:
        page.require(Role.MEMBER)
        data = _key_data(form, errors)
        if "team_id" in form.values:  # the field admins see: a key's team is theirs to set
            data["team_id"] = form.optional("team_id")
        spec = validate(KeyUpdate, data, errors)
        if spec is None:
            return await _edit(page, key_id, 422, errors=errors, values=_values(form))
        view = await api_keys.update_key(page.plane, page.actor, page.id, key_id, spec)
    except GatewayError as exc:
        return await _edit(
            page, key_id, exc.status, errors=error_of(exc, "form"), values=_values(form)
        )
    return redirect(page.request, page.url("keys"), f"Key {view['name']} saved.")


@router.post("/{key_id}/rotate")
async def rotate(page: PageDep, key_id: str, form: SessionForm) -> Response:
    errors: Errors = {}
    grace = form.number("grace_hours", errors)
    try:
        page.require(Role.MEMBER)
        if errors:
            return await _list(page, 422, errors={f"key-{key_id}": errors["grace_hours"]})
        seconds = None if grace is None else grace * 3600
        view, plaintext = await api_keys.rotate_key(
            page.plane, page.actor, page.id, key_id, seconds
        )
    except GatewayError as exc:
        return await _list(page, exc.status, errors={f"key-{key_id}": exc.message})
    return await _show_created(page, view, plaintext, rotated=True)


async def _show_created(
    page: WorkspacePage, view: dict[str, Any], plaintext: str, *, rotated: bool
) -> Response:
    """The once-only page with the key and a snippet naming an alias the key may use."""
    allowed = view.get("allowed_models") or await alias_names(page)
    return show(
        page,
        "key_created.html",
        200 if rotated else 201,
        active="keys",
        key=view,
        plaintext=plaintext,
        rotated=rotated,
        example_alias=allowed[0] if allowed else "your-model-alias",
    )


@router.post("/{key_id}/revoke")
async def revoke(page: PageDep, key_id: str, form: SessionForm) -> Response:
    try:
        page.require(Role.MEMBER)
        view = await api_keys.revoke_key(page.plane, page.actor, page.id, key_id)
    except GatewayError as exc:
        return await _list(page, exc.status, errors={f"key-{key_id}": exc.message})
    return redirect(
        page.request, page.url("keys"), f"Key {view['name']} revoked: it stops working now."
    )
