"""A workspace's own identity providers, managed by its admins: the client secret sealed at
rest and never shown again, the issuer checked against the egress policy, and role rules
that grant admin or owner set only by owners (as with members).

A provider's domains count once a platform administrator verified them for the workspace
(control/sso/domains.py); until then it signs nobody in.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator, model_validator
from sqlalchemy import delete, insert, select, update

from perpetuo.config.sso import normalize_domain
from perpetuo.control import audit
from perpetuo.control.access import require_role
from perpetuo.control.actor import Actor, Role
from perpetuo.control.errors import conflict, forbidden, invalid, not_found, unavailable
from perpetuo.control.outbound import check_tenant_url
from perpetuo.control.plane import ControlPlane
from perpetuo.control.sso.directory import seal_id, verified_domains
from perpetuo.control.sso.roles import RoleRules, grants_admin, is_role, role_names
from perpetuo.control.sso.spec import DEFAULT_SCOPES, GOOGLE_ISSUER, WORKSPACE_PREFIX
from perpetuo.store.aio import AsyncConnection
from perpetuo.store.ids import new_id
from perpetuo.store.sso_tables import sso_domains, sso_identities, sso_providers
from perpetuo.store.timeutil import iso, utcnow
from perpetuo.transport.url import URL

Name = Annotated[str, Field(min_length=1, max_length=100)]
Scope = Annotated[str, Field(min_length=1, max_length=100, pattern=r"^[\x21\x23-\x5b\x5d-\x7e]+$")]
Group = Annotated[str, Field(min_length=1, max_length=200)]
TokenAuth = Literal["client_secret_basic", "client_secret_post"]


def _role(value: str) -> str:
    if not is_role(value):
        raise ValueError(f"unknown role (roles: {', '.join(role_names())})")
    return value


def _domains(values: list[str] | None) -> list[str] | None:
    return None if values is None else sorted({normalize_domain(v) for v in values})


def _issuer(value: str | None) -> str | None:
    if value is None:
        return None
    try:
        URL.parse(value)
    except ValueError as exc:
        raise ValueError(str(exc)) from None
    return value.rstrip("/")


class _Rules(BaseModel):
    """What create and update share."""

    model_config = ConfigDict(extra="forbid")

    scopes: Annotated[list[Scope], Field(max_length=20)] | None = Field(
        default=None, description="Default: openid email profile"
    )
    domains: Annotated[list[str], Field(max_length=20)] | None = Field(
        default=None, description="E-mail domains it signs in; each must be verified"
    )
    groups_claim: Annotated[str, Field(min_length=1, max_length=200)] | None = Field(
        default=None, description="Claim with the groups or roles (dotted path allowed)"
    )
    role_mapping: Annotated[dict[Group, str], Field(max_length=200)] | None = Field(
        default=None, description="Group -> role; the highest mapped role wins"
    )
    default_role: str | None = Field(default=None, description="Role without a mapping")
    unmapped_groups: Literal["refuse", "default"] | None = Field(
        default=None, description="Someone in no mapped group: refused, or the default role"
    )
    jit: bool | None = Field(default=None, description="Create accounts on first sign-in")
    sso_required: bool | None = Field(
        default=None, description="Refuse passwords for addresses in its verified domains"
    )
    enabled: bool | None = None
    token_auth_method: TokenAuth | None = Field(
        default=None, description="As registered at the provider (default client_secret_basic)"
    )

    _check_domains = field_validator("domains")(lambda cls, v: _domains(v))

    @field_validator("role_mapping")
    @classmethod
    def _mapping_roles(cls, value: dict[str, str] | None) -> dict[str, str] | None:
        for role in (value or {}).values():
            _role(role)
        return value

    @field_validator("default_role")
    @classmethod
    def _default_role(cls, value: str | None) -> str | None:
        return None if value is None else _role(value)


class SsoProviderCreate(_Rules):
    name: Name = Field(description='The button says "Sign in with <name>"')
    type: Literal["oidc", "google"] = Field(
        default="oidc", description="oidc: any OpenID Connect provider; google: Google Workspace"
    )
    issuer: Annotated[str, Field(max_length=500)] | None = Field(
        default=None, description="The issuer URL (oidc); discovery is read from it"
    )
    client_id: Annotated[str, Field(min_length=1, max_length=255)]
    client_secret: Annotated[SecretStr, Field(description="Stored encrypted; never shown again")]

    _check_issuer = field_validator("issuer")(lambda cls, v: _issuer(v))

    @field_validator("client_secret")
    @classmethod
    def _secret(cls, value: SecretStr) -> SecretStr:
        if not value.get_secret_value().strip() or len(value.get_secret_value()) > 1000:
            raise ValueError("must be 1 to 1000 characters")
        return value

    @model_validator(mode="after")
    def _issuer_for_type(self) -> SsoProviderCreate:
        if self.type == "oidc" and not self.issuer:
            raise ValueError("an oidc provider needs its issuer URL")
        if self.type == "google" and self.issuer not in (None, GOOGLE_ISSUER):
            raise ValueError(f"Google's issuer is {GOOGLE_ISSUER}")
        return self


class SsoProviderUpdate(_Rules):
    name: Name | None = None
    issuer: Annotated[str, Field(max_length=500)] | None = None
    client_id: Annotated[str, Field(min_length=1, max_length=255)] | None = None
    client_secret: SecretStr | None = Field(default=None, description="A new secret")

    _check_issuer = field_validator("issuer")(lambda cls, v: _issuer(v))


def provider_view(row: Any, verified: set[str], base_url: str) -> dict[str, Any]:
    return {
        "id": row.id,
        "object": "sso_provider",
        "workspace_id": row.workspace_id,
        "name": row.name,
        "type": row.kind,
        "issuer": row.issuer,
        "client_id": row.client_id,
        "client_secret_last4": row.last4,
        "token_auth_method": row.token_auth_method,
        "scopes": list(row.scopes),
        "domains": [{"domain": d, "verified": d in verified} for d in row.domains],
        "groups_claim": row.groups_claim,
        "role_mapping": dict(row.role_mapping),
        "default_role": row.default_role,
        "unmapped_groups": row.unmapped_groups,
        "jit": bool(row.jit),
        "sso_required": bool(row.sso_required),
        "enabled": bool(row.enabled),
        # What to register at the provider, and where people start signing in.
        "redirect_uri": f"{base_url}/ui/sso/{row.id}/callback",
        "sign_in_url": f"{base_url}/ui/sso/{row.id}/start",
        "created_at": iso(row.created_at),
        "updated_at": iso(row.updated_at),
    }


def _keyring(plane: ControlPlane) -> Any:
    if plane.keyring is None:
        raise unavailable(
            "Secrets cannot be stored on this server: the operator must set "
            "PERPETUO_ENCRYPTION_KEYS.",
            "encryption_not_configured",
        )
    return plane.keyring


async def _row(conn: AsyncConnection, workspace_id: str, provider_id: str) -> Any:
    row = (
        await conn.execute(
            select(sso_providers).where(
                sso_providers.c.workspace_id == workspace_id, sso_providers.c.id == provider_id
            )
        )
    ).first()
    if row is None:
        raise not_found("Sign-in provider")
    return row


async def _check_rules(
    conn: AsyncConnection, actor: Actor, workspace_id: str, role: Role, values: dict[str, Any]
) -> None:
    rules = RoleRules(values["default_role"], values["role_mapping"])
    if role < Role.OWNER and grants_admin(rules):
        raise forbidden("Only owners can set up sign-in that grants the admin or owner role.")
    for domain in values["domains"]:
        owner = await conn.scalar(
            select(sso_domains.c.workspace_id).where(sso_domains.c.domain == domain)
        )
        if owner is not None and owner != workspace_id:
            raise conflict(f"The domain {domain} belongs to another workspace.", "domains")


def _defaults(spec: SsoProviderCreate) -> dict[str, Any]:
    return {
        "scopes": spec.scopes or list(DEFAULT_SCOPES[spec.type]),
        "domains": spec.domains or [],
        "groups_claim": spec.groups_claim or "groups",
        "role_mapping": spec.role_mapping or {},
        "default_role": spec.default_role or "member",
        "unmapped_groups": spec.unmapped_groups or "refuse",
        "jit": True if spec.jit is None else spec.jit,
        "sso_required": bool(spec.sso_required),
        "enabled": True if spec.enabled is None else spec.enabled,
        "token_auth_method": spec.token_auth_method or "client_secret_basic",
    }


async def _view(plane: ControlPlane, conn: AsyncConnection, row: Any) -> dict[str, Any]:
    verified = await verified_domains(conn, row.workspace_id)
    return provider_view(row, verified, plane.sso.base_url)


async def authorize(plane: ControlPlane, actor: Actor, workspace_id: str) -> None:
    """Refuse anyone below admin in the workspace (404 without a role): run before the body
    is read, so a viewer is told 403 rather than what is wrong with a body it may not send."""
    async with plane.db.connect() as conn:
        await require_role(conn, actor, workspace_id, Role.ADMIN)


async def create_provider(
    plane: ControlPlane, actor: Actor, workspace_id: str, spec: SsoProviderCreate
) -> dict[str, Any]:
    async with plane.db.begin() as conn:
        # Who may comes first: a viewer learns nothing of the server's set-up or a URL's fate.
        role = await require_role(conn, actor, workspace_id, Role.ADMIN)
        keyring = _keyring(plane)
        issuer = spec.issuer or GOOGLE_ISSUER
        check_tenant_url(plane, issuer, "issuer")
        values = _defaults(spec)
        provider_id = new_id(WORKSPACE_PREFIX)
        secret = spec.client_secret.get_secret_value().strip()
        sealed = keyring.seal(secret, *seal_id(workspace_id, provider_id))
        now = utcnow()
        await _check_rules(conn, actor, workspace_id, role, values)
        await conn.execute(
            insert(sso_providers).values(
                id=provider_id,
                workspace_id=workspace_id,
                name=spec.name.strip(),
                kind=spec.type,
                issuer=issuer,
                client_id=spec.client_id.strip(),
                ciphertext=sealed.ciphertext,
                nonce=sealed.nonce,
                key_id=sealed.key_id,
                last4=secret[-4:],
                created_by=actor.user_id,
                created_at=now,
                updated_at=now,
                **values,
            )
        )
        view = await _view(plane, conn, await _row(conn, workspace_id, provider_id))
        await audit.record(
            conn,
            actor,
            "sso_provider.create",
            workspace_id=workspace_id,
            target_type="sso_provider",
            target_id=provider_id,
            after=view,
        )
    return view


async def list_providers(plane: ControlPlane, actor: Actor, workspace_id: str) -> list[dict]:
    async with plane.db.connect() as conn:
        await require_role(conn, actor, workspace_id, Role.ADMIN)
        rows = (
            await conn.execute(
                select(sso_providers)
                .where(sso_providers.c.workspace_id == workspace_id)
                .order_by(sso_providers.c.created_at, sso_providers.c.id)
            )
        ).all()
        verified = await verified_domains(conn, workspace_id)
    return [provider_view(row, verified, plane.sso.base_url) for row in rows]


async def get_provider(
    plane: ControlPlane, actor: Actor, workspace_id: str, provider_id: str
) -> dict[str, Any]:
    async with plane.db.connect() as conn:
        await require_role(conn, actor, workspace_id, Role.ADMIN)
        return await _view(plane, conn, await _row(conn, workspace_id, provider_id))


async def update_provider(
    plane: ControlPlane, actor: Actor, workspace_id: str, provider_id: str, spec: SsoProviderUpdate
) -> dict[str, Any]:
    await authorize(plane, actor, workspace_id)  # who may, before anything about the body
    changes: dict[str, Any] = spec.model_dump(
        exclude_none=True, exclude={"client_secret", "name", "issuer", "client_id"}
    )
    if spec.name is not None:
        changes["name"] = spec.name.strip()
    if spec.client_id is not None:
        changes["client_id"] = spec.client_id.strip()
    if spec.issuer is not None:
        check_tenant_url(plane, spec.issuer, "issuer")
        changes["issuer"] = spec.issuer
    if spec.client_secret is not None:
        secret = spec.client_secret.get_secret_value().strip()
        if not secret:
            raise invalid("The client secret must not be empty.", "client_secret")
        sealed = _keyring(plane).seal(secret, *seal_id(workspace_id, provider_id))
        changes.update(
            ciphertext=sealed.ciphertext,
            nonce=sealed.nonce,
            key_id=sealed.key_id,
            last4=secret[-4:],
        )
    async with plane.db.begin() as conn:
        role = await require_role(conn, actor, workspace_id, Role.ADMIN)
        row = await _row(conn, workspace_id, provider_id)
        before = await _view(plane, conn, row)
        if row.kind == "google" and changes.get("issuer", GOOGLE_ISSUER) != GOOGLE_ISSUER:
            raise forbidden(f"Google's issuer is {GOOGLE_ISSUER}.")
        merged = {
            "default_role": changes.get("default_role", row.default_role),
            "role_mapping": changes.get("role_mapping", row.role_mapping),
            "domains": changes.get("domains", row.domains),
        }
        # Owners' rules stay owners' to change: an admin may not edit a provider that grants
        # admin or owner, nor make one.
        old = RoleRules(row.default_role, dict(row.role_mapping))
        if role < Role.OWNER and grants_admin(old):
            raise forbidden("Only owners can change sign-in that grants the admin or owner role.")
        await _check_rules(conn, actor, workspace_id, role, merged)
        await conn.execute(
            update(sso_providers)
            .where(sso_providers.c.id == provider_id)
            .values(**changes, updated_at=utcnow())
        )
        after = await _view(plane, conn, await _row(conn, workspace_id, provider_id))
        await audit.record(
            conn,
            actor,
            "sso_provider.update",
            workspace_id=workspace_id,
            target_type="sso_provider",
            target_id=provider_id,
            before=before,
            after=after,
        )
    plane.sso.cache.forget_issuer(row.issuer)
    return after


async def delete_provider(
    plane: ControlPlane, actor: Actor, workspace_id: str, provider_id: str
) -> None:
    async with plane.db.begin() as conn:
        role = await require_role(conn, actor, workspace_id, Role.ADMIN)
        row = await _row(conn, workspace_id, provider_id)
        if role < Role.OWNER and grants_admin(RoleRules(row.default_role, dict(row.role_mapping))):
            raise forbidden("Only owners can remove sign-in that grants the admin or owner role.")
        before = await _view(plane, conn, row)
        await conn.execute(delete(sso_providers).where(sso_providers.c.id == provider_id))
        # Its identities go too: a new provider with the same subjects is someone else's.
        await conn.execute(
            delete(sso_identities).where(sso_identities.c.provider_key == provider_id)
        )
        await audit.record(
            conn,
            actor,
            "sso_provider.delete",
            workspace_id=workspace_id,
            target_type="sso_provider",
            target_id=provider_id,
            before=before,
        )
