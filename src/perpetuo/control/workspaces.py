"""Workspaces (tenants): create, list, read, update settings, delete.

Whoever creates a workspace becomes its owner. People see only the workspaces they belong
to; platform super-administrators (and the master key) see all of them, as owners.
Settings changes bump the workspace's routing version so every instance picks them up.
The plan, its limit overrides and credit enforcement are the platform's to set (super-admins
and the master key): a workspace must not lift its own limits or stop paying for usage.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, field_validator
from sqlalchemy import delete, insert, select, update

from perpetuo.auth.principal import DEFAULT_WORKSPACE_ID
from perpetuo.cache.policy import CachePolicy
from perpetuo.control import audit, money
from perpetuo.control.access import require
from perpetuo.control.actor import Actor, Role
from perpetuo.control.changes import KEY, WORKSPACE, WORKSPACE_DELETED
from perpetuo.control.cors_origins import MAX_ORIGINS, check_origins
from perpetuo.control.email_verification import require_verified
from perpetuo.control.errors import conflict, forbidden, not_found
from perpetuo.control.money import BudgetEntry
from perpetuo.control.outbound import check_tenant_url
from perpetuo.control.plane import ControlPlane
from perpetuo.control.workspace_routing import touch_routing
from perpetuo.guardrails.policy import GuardrailPolicy
from perpetuo.store.aio import AsyncConnection
from perpetuo.store.ids import new_id
from perpetuo.store.pagination import Page, newest_first, to_page
from perpetuo.store.schema import api_keys, memberships, workspaces
from perpetuo.store.timeutil import iso, utcnow

DefaultStrategy = Literal["default", "fastest", "cheapest", "reliable", "weighted", "least-busy"]
Plan = Literal["free", "starter", "pro", "enterprise"]
BudgetPeriod = Literal["daily", "weekly", "monthly", "total"]
Positive = Annotated[int, Field(gt=0)]
Usd = Annotated[float, Field(gt=0)]
Currency = Annotated[str, Field(pattern=r"^[A-Z]{3}$")]  # ISO 4217, e.g. EUR
PLATFORM_SETTINGS = frozenset({"plan", "limits", "credits_required"})


class RateLimits(BaseModel):
    """Limits of a workspace (over its plan's) or of each user in it; unset: no limit."""

    model_config = ConfigDict(extra="forbid", strict=True)

    rpm: Positive | None = None
    tpm: Positive | None = None
    daily_tokens: Positive | None = None
    monthly_tokens: Positive | None = None
    max_parallel: Positive | None = None


def _webhook(value: str | None) -> str | None:
    if value is None:
        return None
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError("must be an http(s) URL")
    return value


class WorkspaceSettings(BaseModel):
    """A workspace's settings with their defaults (only explicitly set values are stored)."""

    model_config = ConfigDict(extra="forbid", strict=True)

    default_strategy: DefaultStrategy = Field(
        default="default", description="Routing strategy for aliases that do not name one"
    )
    log_retention_days: Annotated[int, Field(ge=1, le=3650)] = Field(
        default=30, description="How long request logs are kept"
    )
    log_request_bodies: bool = Field(default=False, description="Keep prompts and completions")
    response_retention_days: Annotated[int, Field(ge=1, le=3650)] = Field(
        default=30, description="How long stored Responses API answers are kept"
    )
    chat_session_retention_days: Annotated[int, Field(ge=1, le=3650)] = Field(
        default=30, description="How long chat sessions are kept after their last message"
    )
    plan: Plan | None = Field(default=None, description="Plan tier (platform admins set it)")
    limits: RateLimits | None = Field(default=None, description="Overrides of the plan's limits")
    user_limits: RateLimits | None = Field(default=None, description="Limits of each user")
    budget_usd: Usd | None = Field(default=None, description="Spend limit per budget period")
    budget_period: BudgetPeriod | None = Field(default=None, description="Default: monthly")
    budget_soft_usd: Usd | None = Field(default=None, description="Alert once at this spend")
    credits_required: bool = Field(default=False, description="Requests spend prepaid credits")
    alert_webhook_url: Annotated[str, Field(max_length=2000)] | None = Field(
        default=None, description="Budget alerts are POSTed here as JSON"
    )
    cache: CachePolicy | None = Field(default=None, description="Response cache (off by default)")
    guardrails: GuardrailPolicy | None = Field(
        default=None, description="PII, secrets and prompt-injection policy (off by default)"
    )
    cors_origins: Annotated[list[str], Field(max_length=MAX_ORIGINS)] | None = Field(
        default=None,
        description="Browser origins (https://app.example.com) allowed to call the data plane "
        "with this workspace's keys, besides the server's own list",
    )
    currency: Currency | None = Field(
        default=None,
        description="Show costs in this currency (USD, or one the operator set a rate for)",
    )

    _check_webhook = field_validator("alert_webhook_url")(_webhook)
    _check_origins = field_validator("cors_origins")(check_origins)


class SettingsPatch(BaseModel):
    """Fields given are set; a field given as null goes back to its default."""

    model_config = ConfigDict(extra="forbid", strict=True)

    default_strategy: DefaultStrategy | None = None
    log_retention_days: Annotated[int, Field(ge=1, le=3650)] | None = None
    log_request_bodies: bool | None = None
    response_retention_days: Annotated[int, Field(ge=1, le=3650)] | None = None
    chat_session_retention_days: Annotated[int, Field(ge=1, le=3650)] | None = None
    plan: Plan | None = None
    limits: RateLimits | None = None
    user_limits: RateLimits | None = None
    budget_usd: Usd | None = None
    budget_period: BudgetPeriod | None = None
    budget_soft_usd: Usd | None = None
    credits_required: bool | None = None
    alert_webhook_url: Annotated[str, Field(max_length=2000)] | None = None
    cache: CachePolicy | None = None
    guardrails: GuardrailPolicy | None = None
    cors_origins: Annotated[list[str], Field(max_length=MAX_ORIGINS)] | None = None
    currency: Currency | None = None

    _check_webhook = field_validator("alert_webhook_url")(_webhook)
    _check_origins = field_validator("cors_origins")(check_origins)


class WorkspaceCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: Annotated[str, Field(min_length=1, max_length=200)]
    settings: SettingsPatch | None = None


class WorkspaceUpdate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: Annotated[str, Field(min_length=1, max_length=200)] | None = None
    settings: SettingsPatch | None = None
    budget: BudgetEntry | None = Field(
        default=None,
        description="The budget in the workspace's currency (or `currency`), converted to "
        "settings.budget_usd at the operator's rate of the day",
    )


def effective_settings(stored: dict[str, Any] | None) -> WorkspaceSettings:
    return WorkspaceSettings.model_validate(stored or {})


def workspace_view(row: Any, role: Role | str | None) -> dict[str, Any]:
    label = role.label if isinstance(role, Role) else role
    return {
        "id": row.id,
        "object": "workspace",
        "name": row.name,
        "settings": effective_settings(row.settings).model_dump(),
        "role": label,  # the caller's role here
        "is_default": row.id == DEFAULT_WORKSPACE_ID,
        "created_at": iso(row.created_at),
        "updated_at": iso(row.updated_at),
    }


def _snapshot(row: Any) -> dict[str, Any]:
    """The workspace as the audit trail records it (without the caller's role)."""
    view = workspace_view(row, None)
    del view["role"]
    return view


def _merged(stored: dict[str, Any] | None, patch: SettingsPatch) -> dict[str, Any]:
    merged = dict(stored or {})
    for name in patch.model_fields_set:
        value = getattr(patch, name)
        if value is None:
            merged.pop(name, None)
        else:
            merged[name] = (
                value.model_dump(exclude_none=True) if isinstance(value, BaseModel) else value
            )
    return merged


def _with_budget(plane: ControlPlane, row: Any, spec: WorkspaceUpdate) -> SettingsPatch | None:
    """The settings to apply: the patch, its display currency checked, with a budget given
    in another currency converted to USD (control/money.py)."""
    patch = spec.settings
    given = patch.model_dump(exclude_unset=True) if patch is not None else {}
    if "currency" in given:
        money.check_display_currency(plane.currency, given["currency"])
    if spec.budget is None:
        return patch
    code = given["currency"] if "currency" in given else (row.settings or {}).get("currency")
    converted, _ = money.budget_settings(plane.currency, spec.budget, code)
    return SettingsPatch.model_validate({**given, **converted})


def _check_platform_settings(actor: Actor, patch: SettingsPatch | None) -> None:
    if patch is not None and PLATFORM_SETTINGS & patch.model_fields_set and not actor.is_superadmin:
        names = ", ".join(sorted(PLATFORM_SETTINGS & patch.model_fields_set))
        raise forbidden(f"Only platform administrators can change {names}.")


async def get_row(conn: AsyncConnection, workspace_id: str) -> Any:
    return (await conn.execute(select(workspaces).where(workspaces.c.id == workspace_id))).first()


async def create_workspace(
    plane: ControlPlane, actor: Actor, spec: WorkspaceCreate
) -> dict[str, Any]:
    _check_platform_settings(actor, spec.settings)
    if spec.settings is not None:
        check_tenant_url(plane, spec.settings.alert_webhook_url, "settings.alert_webhook_url")
        money.check_display_currency(plane.currency, spec.settings.currency)
    workspace_id = new_id("ws")
    now = utcnow()
    settings = _merged({}, spec.settings) if spec.settings else {}
    async with plane.db.begin() as conn:
        await require_verified(conn, plane, actor)
        await conn.execute(
            insert(workspaces).values(
                id=workspace_id,
                name=spec.name.strip(),
                settings=settings,
                created_at=now,
                updated_at=now,
                routing_version=0,
            )
        )
        if actor.user_id is not None:
            await conn.execute(
                insert(memberships).values(
                    workspace_id=workspace_id,
                    user_id=actor.user_id,
                    role=Role.OWNER.label,
                    created_at=now,
                )
            )
        row = await get_row(conn, workspace_id)
        await audit.record(
            conn,
            actor,
            "workspace.create",
            workspace_id=workspace_id,
            target_type="workspace",
            target_id=workspace_id,
            after=_snapshot(row),
        )
    return workspace_view(row, Role.OWNER)


async def list_workspaces(
    plane: ControlPlane, actor: Actor, *, limit: int, cursor: str | None
) -> Page:
    """Rows carry the caller's `role`."""
    if actor.is_superadmin:
        query = select(workspaces)  # all of them; listed_view shows the owner role
    else:
        query = (
            select(workspaces, memberships.c.role)
            .join(memberships, memberships.c.workspace_id == workspaces.c.id)
            .where(memberships.c.user_id == actor.user_id)
        )
    async with plane.db.connect() as conn:
        return to_page(
            (await conn.execute(newest_first(query, workspaces, cursor, limit))).all(), limit
        )


def listed_view(actor: Actor, row: Any) -> dict[str, Any]:
    return workspace_view(row, Role.OWNER if actor.is_superadmin else row.role)


async def get_workspace(plane: ControlPlane, actor: Actor, workspace_id: str) -> dict[str, Any]:
    async with plane.db.connect() as conn:
        grant = await require(conn, actor, workspace_id, "workspace.read")
        return workspace_view(await get_row(conn, workspace_id), grant.role)


async def update_workspace(
    plane: ControlPlane, actor: Actor, workspace_id: str, spec: WorkspaceUpdate
) -> dict[str, Any]:
    async with plane.db.begin() as conn:
        grant = await require(conn, actor, workspace_id, "settings.write")
        _check_platform_settings(actor, spec.settings)
        if spec.settings is not None:
            url = spec.settings.alert_webhook_url
            check_tenant_url(plane, url, "settings.alert_webhook_url")
        row = await get_row(conn, workspace_id)
        patch = _with_budget(plane, row, spec)
        values: dict[str, Any] = {}
        if spec.name is not None and spec.name.strip() != row.name:
            values["name"] = spec.name.strip()
        settings_changed = False
        if patch is not None:
            merged = _merged(row.settings, patch)
            settings_changed = merged != (row.settings or {})
            if settings_changed:
                values["settings"] = merged
        if not values:
            return workspace_view(row, grant.role)
        await conn.execute(
            update(workspaces)
            .where(workspaces.c.id == workspace_id)
            .values(**values, updated_at=utcnow())
        )
        if settings_changed:
            await touch_routing(conn, workspace_id)
        updated = await get_row(conn, workspace_id)
        await audit.record(
            conn,
            actor,
            "workspace.update",
            workspace_id=workspace_id,
            target_type="workspace",
            target_id=workspace_id,
            before=_snapshot(row),
            after=_snapshot(updated),
        )
    if settings_changed:
        await plane.changes.publish(WORKSPACE, workspace_id)
    return workspace_view(updated, grant.role)


async def delete_workspace(plane: ControlPlane, actor: Actor, workspace_id: str) -> None:
    """Owners only. Everything the workspace holds goes with it (the audit trail stays)."""
    async with plane.db.begin() as conn:
        await require(conn, actor, workspace_id, "workspace.delete")
        if workspace_id == DEFAULT_WORKSPACE_ID:
            raise conflict("The default workspace cannot be deleted.")
        row = await get_row(conn, workspace_id)
        if row is None:
            raise not_found("Workspace")
        key_ids = list(
            (
                await conn.execute(
                    select(api_keys.c.id).where(api_keys.c.workspace_id == workspace_id)
                )
            ).scalars()
        )
        await conn.execute(delete(workspaces).where(workspaces.c.id == workspace_id))
        await audit.record(
            conn,
            actor,
            "workspace.delete",
            workspace_id=workspace_id,
            target_type="workspace",
            target_id=workspace_id,
            before={**_snapshot(row), "api_keys": len(key_ids)},
        )
    # Its keys stop working here at once, and elsewhere through the change feed.
    for key_id in key_ids:
        await plane.changes.publish(KEY, key_id)
    await plane.changes.publish(WORKSPACE_DELETED, workspace_id)
