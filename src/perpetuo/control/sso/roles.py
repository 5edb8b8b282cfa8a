"""What a sign-in through an identity provider grants in its workspace: the one place where
group (or role) claims become a Perpetuo role.

A provider has a mapping table {group: role}. Without one, everyone it signs in gets the
default role. With one, the groups decide: the highest role any of them maps to; someone in
no mapped group is refused, or given the default role when the provider says
`unmapped_groups: default`. Every caller goes through `decide_role`, so when roles become
named permission sets only this module changes.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from perpetuo.control.actor import ROLE_NAMES, Role

UNMAPPED_CHOICES = ("refuse", "default")


@dataclass(frozen=True)
class RoleRules:
    default_role: str = "member"
    mapping: Mapping[str, str] = field(default_factory=dict)
    unmapped: str = "refuse"  # refuse | default
    claim: str = "groups"  # where the groups are: a claim name, or a dotted path into claims


@dataclass(frozen=True)
class RoleDecision:
    role: str | None  # None: refused
    groups: tuple[str, ...]
    from_groups: bool  # the mapping decided (so a member's role follows the provider)


def role_names() -> tuple[str, ...]:
    return ROLE_NAMES


def is_role(name: str) -> bool:
    return name in ROLE_NAMES


def rank(name: str) -> int:
    """Ordering of roles, for "the highest wins" and "only owners grant admin"."""
    return int(Role.parse(name))


def claim_values(claims: Mapping[str, Any], path: str) -> tuple[str, ...]:
    """The strings at `path` in the claims: a list, or one string. A dotted path reaches into
    nested objects (Keycloak's `realm_access.roles`) unless the claim's own name has dots
    (some providers name claims with URLs)."""
    value: Any = claims.get(path)
    if value is None and "." in path:
        value = claims
        for part in path.split("."):
            value = value.get(part) if isinstance(value, Mapping) else None
    if isinstance(value, str):
        return (value,)
    if isinstance(value, list | tuple):
        return tuple(str(v) for v in value if isinstance(v, str | int))
    return ()


def decide_role(rules: RoleRules, claims: Mapping[str, Any]) -> RoleDecision:
    groups = claim_values(claims, rules.claim)
    if not rules.mapping:
        return RoleDecision(rules.default_role, groups, from_groups=False)
    granted = [rules.mapping[g] for g in groups if g in rules.mapping]
    if granted:
        return RoleDecision(max(granted, key=rank), groups, from_groups=True)
    if rules.unmapped == "default":
        return RoleDecision(rules.default_role, groups, from_groups=True)
    return RoleDecision(None, groups, from_groups=True)


def grants_admin(rules: RoleRules) -> bool:
    """Do these rules ever grant admin or owner? (Only owners may set such rules up.)"""
    roles = [rules.default_role, *rules.mapping.values()]
    return any(rank(r) >= Role.ADMIN for r in roles)
