"""The config file's `sso:` section: identity providers the operator sets up for the whole
platform (OpenID Connect, Google, GitHub). Secrets come from the environment (`${VAR}`).

Workspaces add their own providers through the admin API (control/sso/admin.py); those are
tenants' and go through the egress policy, these are the operator's and are trusted.
"""

from __future__ import annotations

import re
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator, model_validator

from perpetuo.control.actor import ROLE_NAMES

_KEY = re.compile(r"^[a-z0-9][a-z0-9_-]{0,39}$")
_LABEL = re.compile(r"^(?!-)[a-z0-9-]{1,63}(?<!-)$")


def normalize_domain(value: str) -> str:
    """`Example.COM.` -> `example.com`; ValueError unless it is a domain name with a dot."""
    domain = value.strip().lower().rstrip(".").removeprefix("@")
    labels = domain.split(".")
    if len(domain) > 253 or len(labels) < 2 or not all(_LABEL.match(p) for p in labels):
        raise ValueError(f"{value!r} is not a domain name (like example.com)")
    return domain


def _role(value: str, where: str) -> str:
    if value not in ROLE_NAMES:
        raise ValueError(f"{where}: unknown role {value!r} (roles: {', '.join(ROLE_NAMES)})")
    return value


class SsoProviderConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    type: Literal["oidc", "google", "github"] = Field(
        default="oidc", description="oidc (any OpenID Connect provider), google or github"
    )
    name: Annotated[str, Field(min_length=1, max_length=100)] | None = Field(
        default=None, description='What the button says: "Sign in with <name>"'
    )
    issuer: str | None = Field(
        default=None, description="oidc: the issuer URL (discovery is read from it)"
    )
    client_id: Annotated[str, Field(min_length=1, max_length=255)]
    client_secret: SecretStr | None = Field(
        default=None, description="The client secret (`${VAR}`); none: a public client (PKCE)"
    )
    scopes: list[str] | None = Field(default=None, description="Default: per type")
    domains: list[str] = Field(
        default_factory=list,
        description="E-mail domains this provider signs in (and, with `workspace`, maps to "
        "that workspace); empty: any address the provider has verified",
    )
    workspace: str | None = Field(
        default=None, description="Workspace id people signing in this way become members of"
    )
    default_role: str = Field(default="member", description="Role of new members")
    groups_claim: str = Field(
        default="groups", description="Claim holding groups or roles (dotted path allowed)"
    )
    role_mapping: dict[str, str] = Field(
        default_factory=dict, description="Group -> role; the highest mapped role wins"
    )
    unmapped_groups: Literal["refuse", "default"] = Field(
        default="refuse",
        description="With a role_mapping, someone in no mapped group is refused, or gets "
        "default_role",
    )
    sso_required: bool = Field(
        default=False,
        description="People with an address in `domains` cannot use a password (sign-in, "
        "sign-up and password reset are refused)",
    )
    jit: bool = Field(
        default=True,
        description="Create accounts for people not known yet (without `domains` or "
        "`workspace`, only while sign-up is open)",
    )
    button: bool = Field(default=True, description="Show a button on the sign-in page")
    token_auth_method: Literal["client_secret_basic", "client_secret_post"] | None = Field(
        default=None,
        description="How the client authenticates at the token endpoint, as registered at "
        "the provider; default: client_secret_basic (GitHub: client_secret_post)",
    )
    authorization_endpoint: str | None = Field(
        default=None, description="Override (GitHub Enterprise, or a provider without discovery)"
    )
    token_endpoint: str | None = Field(default=None, description="Override, as above")
    api_base: str | None = Field(
        default=None, description="github: the API (default https://api.github.com)"
    )

    @field_validator("domains")
    @classmethod
    def _domains(cls, value: list[str]) -> list[str]:
        return sorted({normalize_domain(d) for d in value})

    @model_validator(mode="after")
    def _check(self) -> SsoProviderConfig:
        _role(self.default_role, "default_role")
        for group, role in self.role_mapping.items():
            _role(role, f"role_mapping.{group}")
        if self.type == "oidc" and not self.issuer:
            raise ValueError("an oidc provider needs its issuer URL")
        if self.type == "github" and self.issuer:
            raise ValueError(
                "GitHub has no issuer: set authorization_endpoint, token_endpoint "
                "and api_base for GitHub Enterprise"
            )
        if self.type == "github" and self.client_secret is None:
            raise ValueError("GitHub needs the OAuth app's client_secret")
        if self.sso_required and not self.domains:
            raise ValueError("sso_required needs the domains it applies to")
        return self


class SsoConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    providers: dict[str, SsoProviderConfig] = Field(
        default_factory=dict, description="By name (lower case, digits, - and _)"
    )

    @field_validator("providers")
    @classmethod
    def _names(cls, value: dict[str, SsoProviderConfig]) -> dict[str, SsoProviderConfig]:
        for name in value:
            if not _KEY.match(name) or name.startswith("ssop_"):
                raise ValueError(
                    f"{name!r}: a provider's name is 1-40 lower-case letters, digits, - or _ "
                    "(and does not start with ssop_)"
                )
        return value
