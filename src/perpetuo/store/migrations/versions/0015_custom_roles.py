"""Custom roles: each workspace's named sets of permissions (members hold them by name).

Revision ID: 0015
Revises: 0014
Create Date: 2026-12-17
"""

import sqlalchemy as sa
from alembic import op

from perpetuo.store.schema import JsonValue, UTCDateTime

revision = "0015"
down_revision = "0014"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "workspace_roles",
        sa.Column("id", sa.String(40), primary_key=True),
        sa.Column(
            "workspace_id",
            sa.String(40),
            sa.ForeignKey("workspaces.id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("name", sa.String(16), nullable=False),
        sa.Column("description", sa.String(500), nullable=False),
        sa.Column("permissions", JsonValue, nullable=False),
        sa.Column("created_at", UTCDateTime, nullable=False),
        sa.Column("updated_at", UTCDateTime, nullable=False),
    )
    op.create_index(
        "uq_workspace_roles_name", "workspace_roles", ["workspace_id", "name"], unique=True
    )


def downgrade() -> None:
    # Members holding a custom role would be left with a name no role has: make them viewers.
    op.execute(
        "UPDATE memberships SET role = 'viewer' "
        "WHERE role NOT IN ('owner', 'admin', 'member', 'viewer')"
    )
    op.drop_index("uq_workspace_roles_name", table_name="workspace_roles")
    op.drop_table("workspace_roles")
