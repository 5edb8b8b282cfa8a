"""Virtual API keys: create (shown once), list, update, revoke, rotate.

Members manage the keys they own; admins and owners manage every key of the workspace;
viewers only read. Every change is audited and reaches every instance's key cache.

A key works only while its owner may act in its workspace: disabling the owner, or removing
them from the workspace, stops their keys (and re-enabling or re-adding them restores the
keys). Service keys have no owner and belong to the workspace: admins create them (or the
master key and the CLI, whose keys have no owner either), and they outlive any one person.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import re
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from perpetuo.auth import api_keys as keygen
from perpetuo.auth.key_cache import owner_standing
from perpetuo.cache.policy import CachePolicy
from perpetuo.control import audit
from perpetuo.control.access import require
from perpetuo.control.actor import Actor
from perpetuo.control.changes import KEY
from perpetuo.control.email_verification import require_verified
from perpetuo.control.errors import forbidden, invalid, not_found
from perpetuo.control.permissions import Grant
from perpetuo.control.plane import ControlPlane
from perpetuo.guardrails.policy import GuardrailPolicy
from perpetuo.store.ids import new_id
from perpetuo.store.pagination import Page, newest_first, to_page
from perpetuo.store.repos import api_keys as repo
from perpetuo.store.repos import teams as team_repo
from perpetuo.store.schema import api_keys
from perpetuo.store.timeutil import iso, utcnow

# What a key may call: chat covers its dialects and text completions; audio covers
# transcriptions, translations and speech.
SCOPES = ("chat", "embeddings", "images", "audio", "rerank", "moderations", "models:read")
_DOMAIN = re.compile(
    r"^(?=.{1,253}$)([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\.)*[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$"
)

Scope = Literal["chat", "embeddings", "images", "audio", "rerank", "moderations", "models:read"]
# Stored in the key's `limits` JSON beside the numbers (the limits engine ignores them).
POLICY_FIELDS = ("cache", "guardrails")


class KeyLimits(BaseModel):
    """Per-key limits and budgets (enforced by the limits and budgets layer)."""

    model_config = ConfigDict(extra="forbid")

    rpm: Annotated[int, Field(gt=0)] | None = None
    tpm: Annotated[int, Field(gt=0)] | None = None
    max_parallel: Annotated[int, Field(gt=0)] | None = None
    daily_tokens: Annotated[int, Field(gt=0)] | None = None
    monthly_tokens: Annotated[int, Field(gt=0)] | None = None
    budget_usd: Annotated[float, Field(gt=0)] | None = None
    budget_period: Literal["daily", "weekly", "monthly", "total"] | None = None
    budget_soft_usd: Annotated[float, Field(gt=0)] | None = None


class KeyRestrictions(BaseModel):
    """Fields shared by creation and update; validation messages name the field."""

    model_config = ConfigDict(extra="forbid")

    scopes: list[Scope] | None = None
    allowed_models: list[Annotated[str, Field(min_length=1, max_length=200)]] | None = None
    ip_allowlist: list[str] | None = None
    referer_domains: list[str] | None = None
    expires_at: dt.datetime | None = None
    metadata: (
        dict[Annotated[str, Field(max_length=64)], Annotated[str, Field(max_length=500)]] | None
    ) = None
    limits: KeyLimits | None = None
    cache: CachePolicy | None = None
    guardrails: GuardrailPolicy | None = None
    team_id: Annotated[str, Field(max_length=40)] | None = Field(
        default=None,
        description="The key's team (admins and owners); null: its owner's team, if any",
    )

    @field_validator("ip_allowlist")
    @classmethod
    def _cidrs(cls, value: list[str] | None) -> list[str] | None:
        if value is None:
            return None
        out = []
        for entry in value:
            try:
                out.append(str(ipaddress.ip_network(entry.strip(), strict=False)))
            except ValueError:
                raise ValueError(f"{entry!r} is not an IP address or CIDR range") from None
        return out

    @field_validator("referer_domains")
    @classmethod
    def _domains(cls, value: list[str] | None) -> list[str] | None:
        if value is None:
            return None
        out = []
        for entry in value:
            domain = entry.strip().lower().removeprefix("*.")
            if not _DOMAIN.match(domain):
                raise ValueError(f"{entry!r} is not a domain name")
            out.append(domain)
        return out

    @field_validator("expires_at")
    @classmethod
    def _future(cls, value: dt.datetime | None) -> dt.datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            value = value.replace(tzinfo=dt.UTC)
        if value <= utcnow():
            raise ValueError("must be in the future")
        return value

    @field_validator("metadata")
    @classmethod
    def _small(cls, value: dict[str, str] | None) -> dict[str, str] | None:
        if value is not None and len(value) > 50:
            raise ValueError("at most 50 entries")
        return value


class KeyCreate(KeyRestrictions):
    name: Annotated[str, Field(min_length=1, max_length=200)]
    environment: str = Field(
        default="live",
        description="live, test, or an environment the operator adds (api_keys.environments); "
        "the key's prefix is pk_<environment>_",
    )
    service: bool = Field(
        default=False,
        description="A service key belongs to the workspace, not to its creator, and keeps "
        "working when they leave or are disabled (admins and owners only)",
    )


class KeyUpdate(KeyRestrictions):
    name: Annotated[str, Field(min_length=1, max_length=200)] | None = None


def status_of(row: Any, now: dt.datetime | None = None) -> str:
    """active | revoked | expired | owner_disabled | owner_removed (the owner was disabled,
    or is no longer in the key's workspace: the key is refused until that changes)."""
    now = now or utcnow()
    if row.revoked_at is not None:
        return "revoked"
    if row.expires_at is not None and row.expires_at <= now:
        return "expired"
    owner = owner_standing(row)
    if owner is not None and owner != "active":
        return f"owner_{owner}"
    return "active"


def key_view(row: Any) -> dict[str, Any]:
    """What the API shows of a key: never its secret or hash."""
    return {
        "id": row.id,
        "object": "api_key",
        "workspace_id": row.workspace_id,
        "owner_id": row.owner_id,
        "owner_status": owner_standing(row),  # active | disabled | removed; null: service key
        "name": row.name,
        "environment": row.environment,
        "prefix": row.prefix,
        "last4": row.last4,
        "display": f"{row.prefix}…{row.last4}",
        "status": status_of(row),
        "scopes": list(row.scopes or []),
        "allowed_models": row.allowed_models,
        "ip_allowlist": row.ip_allowlist,
        "referer_domains": row.referer_domains,
        "metadata": row.metadata or {},
        "team_id": row.team_id,
        "limits": {k: v for k, v in (row.limits or {}).items() if k not in POLICY_FIELDS},
        "cache": (row.limits or {}).get("cache"),
        "guardrails": (row.limits or {}).get("guardrails"),
        "created_at": iso(row.created_at),
        "expires_at": iso(row.expires_at),
        "revoked_at": iso(row.revoked_at),
        "last_used_at": iso(row.last_used_at),
        "rotation_grace_until": iso(row.previous_valid_until) if row.previous_hash else None,
    }


def _restriction_values(spec: KeyRestrictions, stored_limits: Any = None) -> dict[str, Any]:
    values: dict[str, Any] = {}
    names = ("allowed_models", "ip_allowlist", "referer_domains", "expires_at", "metadata")
    for name in (*names, "team_id"):
        if name in spec.model_fields_set:
            values[name] = getattr(spec, name)
    if "scopes" in spec.model_fields_set:
        if not spec.scopes:
            raise invalid("A key needs at least one scope.", "scopes")
        values["scopes"] = sorted(set(spec.scopes))
    fields = spec.model_fields_set
    if fields & {"limits", *POLICY_FIELDS}:
        stored = dict(stored_limits or {})
        merged = {k: v for k, v in stored.items() if k not in POLICY_FIELDS}
        if "limits" in fields:
            merged = spec.limits.model_dump(exclude_none=True) if spec.limits else {}
        for name in POLICY_FIELDS:
            policy = getattr(spec, name) if name in fields else None
            if policy is not None:
                merged[name] = policy.model_dump(exclude_none=True)
            elif name not in fields and name in stored:
                merged[name] = stored[name]
        values["limits"] = merged
    if values.get("metadata") is None and "metadata" in values:
        values["metadata"] = {}
    return values


async def create_key(
    plane: ControlPlane, actor: Actor, workspace_id: str, spec: KeyCreate
) -> tuple[dict[str, Any], str]:
    """The new key's view and its plaintext, which is never available again."""
    known = plane.api_keys.all_environments
    if spec.environment not in known:
        raise invalid(
            f"Unknown environment {spec.environment!r} (this server has: {', '.join(known)}).",
            "environment",
        )
    new = keygen.generate(spec.environment)
    key_id = new_id("key")
    values = {
        "scopes": list(SCOPES),
        "metadata": {},
        "limits": {},
        **_restriction_values(spec),
        "id": key_id,
        "workspace_id": workspace_id,
        "owner_id": None if spec.service else actor.user_id,
        "name": spec.name,
        "environment": spec.environment,
        "prefix": new.display_prefix,
        "last4": new.last4,
        "key_hash": keygen.key_hash(plane.keys.api_key_hmac, new.plaintext),
    }
    async with plane.db.begin() as conn:
        grant = await require(conn, actor, workspace_id, "keys.create")
        await require_verified(conn, plane, actor)
        if spec.service and not grant.allows("keys.manage"):
            raise forbidden("Only workspace admins and owners create service keys.")
        await _check_team(conn, grant, workspace_id, spec)
        await repo.insert_key(conn, values)
        row = await repo.get(conn, workspace_id, key_id)
        view = key_view(row)
        await audit.record(
            conn,
            actor,
            "api_key.create",
            workspace_id=workspace_id,
            target_type="api_key",
            target_id=key_id,
            after=view,
        )
    return view, new.plaintext


async def _check_team(conn: Any, grant: Grant, workspace_id: str, spec: KeyRestrictions) -> None:
    """Putting a key in a team (or taking it out) is for those who manage every key (admins
    and owners), and only into a team of the key's own workspace (another's team ids are not
    found)."""
    if "team_id" not in spec.model_fields_set:
        return
    if not grant.allows("keys.manage"):
        raise forbidden("Only workspace admins and owners put keys in teams.")
    if spec.team_id is not None and await team_repo.find(conn, workspace_id, spec.team_id) is None:
        raise not_found("Team")


async def _manageable(conn: Any, actor: Actor, workspace_id: str, key_id: str) -> Any:
    grant = await require(conn, actor, workspace_id, "keys.create")
    row = await repo.get(conn, workspace_id, key_id)
    if row is None:
        raise not_found("API key")
    if not grant.allows("keys.manage") and row.owner_id != actor.user_id:
        raise forbidden("Members can only manage the API keys they created.")
    return row


async def list_keys(
    plane: ControlPlane, actor: Actor, workspace_id: str, *, limit: int, cursor: str | None
) -> Page:
    async with plane.db.connect() as conn:
        await require(conn, actor, workspace_id, "keys.read")
        query = newest_first(
            repo.with_owner().where(api_keys.c.workspace_id == workspace_id),
            api_keys,
            cursor,
            limit,
        )
        return to_page((await conn.execute(query)).all(), limit)


async def get_key(
    plane: ControlPlane, actor: Actor, workspace_id: str, key_id: str
) -> dict[str, Any]:
    async with plane.db.connect() as conn:
        await require(conn, actor, workspace_id, "keys.read")
        row = await repo.get(conn, workspace_id, key_id)
    if row is None:
        raise not_found("API key")
    return key_view(row)


async def update_key(
    plane: ControlPlane, actor: Actor, workspace_id: str, key_id: str, spec: KeyUpdate
) -> dict[str, Any]:
    async with plane.db.begin() as conn:
        row = await _manageable(conn, actor, workspace_id, key_id)
        await _check_team(
            conn, await require(conn, actor, workspace_id, "keys.create"), workspace_id, spec
        )
        values = _restriction_values(spec, row.limits)
        if spec.name is not None:
            values["name"] = spec.name
        if row.revoked_at is not None:
            raise invalid("A revoked key cannot be changed.")
        before = key_view(row)
        if values:
            await repo.update_key(conn, key_id, values)
        after = key_view(await repo.get(conn, workspace_id, key_id))
        await audit.record(
            conn,
            actor,
            "api_key.update",
            workspace_id=workspace_id,
            target_type="api_key",
            target_id=key_id,
            before=before,
            after=after,
        )
    await plane.changes.publish(KEY, key_id)
    return after


async def revoke_key(
    plane: ControlPlane, actor: Actor, workspace_id: str, key_id: str
) -> dict[str, Any]:
    async with plane.db.begin() as conn:
        row = await _manageable(conn, actor, workspace_id, key_id)
        before = key_view(row)
        if row.revoked_at is None:
            await repo.update_key(conn, key_id, {"revoked_at": utcnow()})
        after = key_view(await repo.get(conn, workspace_id, key_id))
        await audit.record(
            conn,
            actor,
            "api_key.revoke",
            workspace_id=workspace_id,
            target_type="api_key",
            target_id=key_id,
            before=before,
            after=after,
        )
    await plane.changes.publish(KEY, key_id)
    return after


async def rotate_key(
    plane: ControlPlane,
    actor: Actor,
    workspace_id: str,
    key_id: str,
    grace_seconds: float | None = None,
) -> tuple[dict[str, Any], str]:
    """A new secret for the same key; the old one keeps working for the grace period."""
    grace = plane.tokens.rotation_grace if grace_seconds is None else grace_seconds
    if grace < 0 or grace > 30 * 24 * 3600:
        raise invalid("The grace period must be between 0 and 30 days.", "grace_seconds")
    async with plane.db.begin() as conn:
        row = await _manageable(conn, actor, workspace_id, key_id)
        if (status := status_of(row)) != "active":
            raise invalid(f"This key cannot be rotated (its status is {status}).")
        new = keygen.generate(row.environment)
        before = key_view(row)
        await repo.update_key(
            conn,
            key_id,
            {
                "key_hash": keygen.key_hash(plane.keys.api_key_hmac, new.plaintext),
                "previous_hash": row.key_hash if grace > 0 else None,
                "previous_valid_until": utcnow() + dt.timedelta(seconds=grace)
                if grace > 0
                else None,
                "prefix": new.display_prefix,
                "last4": new.last4,
            },
        )
        after = key_view(await repo.get(conn, workspace_id, key_id))
        await audit.record(
            conn,
            actor,
            "api_key.rotate",
            workspace_id=workspace_id,
            target_type="api_key",
            target_id=key_id,
            before=before,
            after=after,
        )
    await plane.changes.publish(KEY, key_id)
    return after, new.plaintext


async def owner_changed(plane: ControlPlane, key_ids: list[str]) -> None:
    """After the transaction that changed an owner's standing (store.repos.api_keys.touch_owned
    marked their keys): drop the keys from every instance's cache now."""
    for key_id in key_ids:
        await plane.changes.publish(KEY, key_id)


_DURATION = re.compile(r"^(\d+)([smhdw])$")
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


def parse_duration(text: str) -> dt.timedelta:
    """`30d`, `12h`, `90m`, `2w`: for `--expires` on the command line."""
    match = _DURATION.match(text.strip().lower())
    if not match:
        raise ValueError(f"{text!r} is not a duration like 30d, 12h, 90m or 2w")
    return dt.timedelta(seconds=int(match[1]) * _UNITS[match[2]])
