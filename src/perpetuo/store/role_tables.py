"""Custom roles (control/roles.py): a workspace's named sets of permissions.

A member's `memberships.role` holds either a built-in role's name or a custom role's name
in that workspace (names never collide: built-in names are refused). Registered on the one
`metadata` by store/schema.py.
"""

from __future__ import annotations

from sqlalchemy import Column, ForeignKey, Index, String, Table

from perpetuo.store.schema import JsonValue, UTCDateTime, metadata

workspace_roles = Table(
    "workspace_roles",
    metadata,
    Column("id", String(40), primary_key=True),
    Column("workspace_id", ForeignKey("workspaces.id", ondelete="CASCADE"), nullable=False),
    Column("name", String(16), nullable=False),  # fits memberships.role
    Column("description", String(500), nullable=False, default=""),
    Column("permissions", JsonValue, nullable=False),  # sorted permission names
    Column("created_at", UTCDateTime, nullable=False),
    Column("updated_at", UTCDateTime, nullable=False),
    Index("uq_workspace_roles_name", "workspace_id", "name", unique=True),
)
