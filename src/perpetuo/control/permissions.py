"""Permissions: what each control-plane check asks for, and what roles grant.

A role is a named set of permissions. The built-in roles (viewer, member, admin, owner) are
the sets below, each containing the ones under it, so they allow exactly what they always
have; a workspace adds custom roles (control/roles.py) with any subset. A check names the
permission it needs (access.require); checks not yet written that way ask for a built-in
role (access.require_role), which a custom role passes when it holds every permission of
that role.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from perpetuo.control.actor import Role

# Each permission, the least built-in role that has it, and what it allows.
PERMISSIONS: dict[str, tuple[Role, str]] = {
    "workspace.read": (Role.VIEWER, "see the workspace, its settings and its members"),
    "keys.read": (Role.VIEWER, "list API keys (never their secrets)"),
    "keys.create": (Role.MEMBER, "create API keys and manage one's own"),
    "keys.manage": (Role.ADMIN, "manage every key of the workspace, create service keys"),
    "models.read": (Role.VIEWER, "see the workspace's models"),
    "models.write": (Role.ADMIN, "add, change and remove the workspace's models"),
    "credentials.read": (Role.VIEWER, "see provider credentials (never their secrets)"),
    "credentials.write": (Role.ADMIN, "add, replace and remove provider credentials"),
    "usage.read": (Role.VIEWER, "usage, analytics, exports and the request log"),
    "logs.detail": (Role.ADMIN, "prompts and answers kept in the request log"),
    "credits.read": (Role.VIEWER, "the credit balance"),
    "credits.ledger": (Role.ADMIN, "the credit ledger's entries"),
    "cache.read": (Role.VIEWER, "response-cache statistics"),
    "cache.purge": (Role.ADMIN, "empty the response cache"),
    "sessions.read": (Role.VIEWER, "chat sessions kept by the gateway"),
    "sessions.manage": (Role.ADMIN, "delete chat sessions"),
    "alerts.read": (Role.VIEWER, "alert rules, channels and history"),
    "alerts.write": (Role.ADMIN, "change alert rules and channels, send test alerts"),
    "audit.read": (Role.ADMIN, "the workspace's audit log"),
    "members.manage": (
        Role.ADMIN,
        "invite members, change roles and remove members (only owners touch owners and "
        "admins; nobody grants a permission they lack)",
    ),
    "roles.manage": (Role.ADMIN, "create, change and delete custom roles"),
    "settings.write": (Role.ADMIN, "rename the workspace and change its settings"),
    "workspace.delete": (Role.OWNER, "delete the workspace"),
}

BUILT_IN: dict[str, frozenset[str]] = {
    role.label: frozenset(p for p, (least, _) in PERMISSIONS.items() if least <= role)
    for role in Role
}


def unknown(permissions: Iterable[str]) -> list[str]:
    return [p for p in permissions if p not in PERMISSIONS]


def rank_of(permissions: frozenset[str]) -> Role | None:
    """The highest built-in role whose every permission this set holds (None: not even a
    viewer's): how checks that ask for a built-in role see a custom role."""
    held = [role for role in Role if BUILT_IN[role.label] <= permissions]
    return max(held) if held else None


def dashboard_rank(role: str, permissions: Iterable[str] | None) -> Role:
    """The built-in role whose pages the dashboard shows a member: a custom role's rank, at
    least a viewer's (what they do there is still checked permission by permission)."""
    if role in BUILT_IN:
        return Role.parse(role)
    return rank_of(frozenset(permissions or ())) or Role.VIEWER


@dataclass(frozen=True, slots=True)
class Grant:
    """What one person may do in one workspace: their role's name and permissions."""

    role: str
    permissions: frozenset[str]

    @classmethod
    def built_in(cls, role: Role) -> Grant:
        return cls(role.label, BUILT_IN[role.label])

    @property
    def rank(self) -> Role | None:
        if self.role in BUILT_IN:
            return Role.parse(self.role)
        return rank_of(self.permissions)

    def allows(self, permission: str) -> bool:
        return permission in self.permissions

    def covers(self, permissions: frozenset[str]) -> bool:
        return permissions <= self.permissions


OWNER = Grant.built_in(Role.OWNER)
