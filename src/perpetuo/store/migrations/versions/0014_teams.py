"""Teams (departments) inside a workspace: the `teams` table, each member's and each key's
team, each member's own limits, and the team a request counted to in the request log.

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-16
"""

import sqlalchemy as sa
from alembic import op

from perpetuo.store.schema import JsonValue, UTCDateTime

revision = "0014"
down_revision = "0013"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "teams",
        sa.Column("id", sa.String(40), primary_key=True),
        sa.Column(
            "workspace_id",
            sa.String(40),
            sa.ForeignKey("workspaces.id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("description", sa.String(500), nullable=False),
        sa.Column("limits", JsonValue, nullable=False),
        sa.Column("created_at", UTCDateTime, nullable=False),
        sa.Column("updated_at", UTCDateTime, nullable=False),
    )
    op.create_index("uq_teams_name", "teams", ["workspace_id", "name"], unique=True)
    # Plain columns, no foreign keys: deleting a team clears them in the same transaction,
    # and SQLite could add a foreign key only by rebuilding the tables.
    op.add_column("memberships", sa.Column("team_id", sa.String(40)))
    op.add_column("memberships", sa.Column("limits", JsonValue))
    op.create_index("ix_memberships_team", "memberships", ["team_id"])
    op.add_column("api_keys", sa.Column("team_id", sa.String(40)))
    op.create_index("ix_api_keys_team", "api_keys", ["team_id"])
    # On PostgreSQL the partitioned table passes the new column on to every partition.
    op.add_column("request_logs", sa.Column("team_id", sa.String(40)))


def downgrade() -> None:
    with op.batch_alter_table("request_logs") as batch:
        batch.drop_column("team_id")
    op.drop_index("ix_api_keys_team", "api_keys")
    with op.batch_alter_table("api_keys") as batch:
        batch.drop_column("team_id")
    op.drop_index("ix_memberships_team", "memberships")
    with op.batch_alter_table("memberships") as batch:
        batch.drop_column("limits")
        batch.drop_column("team_id")
    op.drop_index("uq_teams_name", "teams")
    op.drop_table("teams")
    # Team rollups would otherwise stay behind with no way to read them.
    op.execute("DELETE FROM usage_rollups WHERE dim = 'team'")
