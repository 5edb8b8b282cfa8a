"""One identity provider as a sign-in uses it, whether the operator's (config file) or a
workspace's (a row): endpoints, client, domains, role rules, and whether its addresses go
through the egress policy.

The kinds differ in small ways, kept here as data: Google is OpenID Connect at a fixed
issuer (whose tokens may name it without the scheme) and says which Workspace domain an
account belongs to (`hd`); GitHub is plain OAuth 2.0 whose user and e-mail addresses come
from its REST API.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from perpetuo.config.sso import SsoProviderConfig
from perpetuo.control.sso.roles import RoleRules
from perpetuo.transport.egress import EgressPolicy

GOOGLE_ISSUER = "https://accounts.google.com"
GITHUB = {
    "authorization_endpoint": "https://github.com/login/oauth/authorize",
    "token_endpoint": "https://github.com/login/oauth/access_token",
    "api_base": "https://api.github.com",
}
DEFAULT_SCOPES = {
    "oidc": ("openid", "email", "profile"),
    "google": ("openid", "email", "profile"),
    "github": ("read:user", "user:email"),
}
LABELS = {"google": "Google", "github": "GitHub"}
WORKSPACE_PREFIX = "ssop"  # workspace providers' ids; the config's names never start so


@dataclass(frozen=True)
class ProviderSpec:
    key: str  # the config file's name, or the workspace provider's id
    kind: str  # oidc | google | github
    name: str
    client_id: str
    client_secret: str | None
    issuer: str | None = None  # None for GitHub
    scopes: tuple[str, ...] = ()
    # Addresses this provider may vouch for: the operator's list, or a workspace's domains
    # that a platform administrator verified. Empty: any address the provider verified.
    domains: tuple[str, ...] = ()
    workspace_id: str | None = None  # where the people it signs in become members
    rules: RoleRules = field(default_factory=RoleRules)
    jit: bool = True
    sso_required: bool = False
    button: bool = True
    token_auth: str = "client_secret_basic"  # noqa: S105 (a method name; or client_secret_post)
    egress: EgressPolicy | None = None  # a tenant's provider: every call through the policy
    authorization_endpoint: str | None = None
    token_endpoint: str | None = None
    api_base: str | None = None

    @property
    def tenant(self) -> bool:
        return self.key.startswith(f"{WORKSPACE_PREFIX}_")

    @property
    def is_oidc(self) -> bool:
        return self.kind != "github"

    def accepted_issuers(self) -> list[str]:
        assert self.issuer is not None
        if self.kind == "google":  # Google's tokens may say either
            return [GOOGLE_ISSUER, "accounts.google.com"]
        return [self.issuer]

    def redirect_uri(self, base_url: str) -> str:
        """Each provider answers at its own address, so an answer from one provider can
        never be taken for another's (the mix-up attack)."""
        return f"{base_url}/ui/sso/{self.key}/callback"

    def domain_of(self, email: str) -> str:
        return email.rpartition("@")[2].lower()

    def vouches_for(self, email: str) -> bool:
        return not self.domains or self.domain_of(email) in self.domains


def from_config(name: str, config: SsoProviderConfig) -> ProviderSpec:
    issuer = config.issuer.rstrip("/") if config.issuer else None
    if config.type == "google":
        issuer = issuer or GOOGLE_ISSUER
    github = GITHUB if config.type == "github" else {}
    return ProviderSpec(
        key=name,
        kind=config.type,
        name=config.name or LABELS.get(config.type, name),
        client_id=config.client_id,
        client_secret=config.client_secret.get_secret_value() if config.client_secret else None,
        issuer=issuer,
        scopes=tuple(config.scopes or DEFAULT_SCOPES[config.type]),
        domains=tuple(config.domains),
        workspace_id=config.workspace,
        rules=RoleRules(
            config.default_role,
            dict(config.role_mapping),
            config.unmapped_groups,
            config.groups_claim,
        ),
        jit=config.jit,
        sso_required=config.sso_required,
        button=config.button,
        token_auth=config.token_auth_method
        or ("client_secret_post" if config.type == "github" else "client_secret_basic"),
        authorization_endpoint=config.authorization_endpoint
        or github.get("authorization_endpoint"),
        token_endpoint=config.token_endpoint or github.get("token_endpoint"),
        api_base=(config.api_base or github.get("api_base") or "").rstrip("/") or None,
    )


def from_row(row: Any, secret: str, verified: set[str], egress: EgressPolicy) -> ProviderSpec:
    """A workspace's provider: only its domains a platform administrator verified count."""
    return ProviderSpec(
        key=row.id,
        kind=row.kind,
        name=row.name,
        client_id=row.client_id,
        client_secret=secret,
        issuer=row.issuer.rstrip("/"),
        scopes=tuple(row.scopes),
        domains=tuple(d for d in row.domains if d in verified),
        workspace_id=row.workspace_id,
        rules=RoleRules(
            row.default_role, dict(row.role_mapping), row.unmapped_groups, row.groups_claim
        ),
        jit=row.jit,
        sso_required=row.sso_required,
        token_auth=row.token_auth_method,
        egress=egress,
    )
