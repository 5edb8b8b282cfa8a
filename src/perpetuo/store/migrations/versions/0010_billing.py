"""Billing: Stripe references on credit-ledger entries, each workspace's paying account, the
Stripe events applied, payments, trials, coupons and referrals.

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-12
"""

import sqlalchemy as sa
from alembic import op

from perpetuo.store.schema import JsonValue, UTCDateTime

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def _workspace(primary_key: bool = False) -> sa.Column:
    return sa.Column(
        "workspace_id",
        sa.String(40),
        sa.ForeignKey("workspaces.id", ondelete="CASCADE"),
        primary_key=primary_key,
        nullable=False,
    )


def upgrade() -> None:
    with op.batch_alter_table("credit_ledger") as batch:
        batch.add_column(sa.Column("reference", sa.String(120)))
        batch.create_unique_constraint("uq_credit_ledger_reference", ["reference"])
    op.create_table(
        "billing_accounts",
        _workspace(primary_key=True),
        sa.Column("customer_id", sa.String(80), unique=True),
        sa.Column("plan_id", sa.String(64)),
        sa.Column("interval", sa.String(8)),
        sa.Column("subscription_id", sa.String(80)),
        sa.Column("subscription_status", sa.String(24)),
        sa.Column("current_period_end", UTCDateTime),
        sa.Column("cancel_at_period_end", sa.Boolean, nullable=False),
        sa.Column("state_at", sa.BigInteger, nullable=False),
        sa.Column("past_due_since", UTCDateTime),
        sa.Column("auto_recharge", sa.Boolean, nullable=False),
        sa.Column("recharge_threshold_micros", sa.BigInteger, nullable=False),
        sa.Column("recharge_amount_micros", sa.BigInteger, nullable=False),
        sa.Column("recharge_armed", sa.Boolean, nullable=False),
        sa.Column("recharge_failed_at", UTCDateTime),
        sa.Column("low_balance_armed", sa.Boolean, nullable=False),
        sa.Column("crossings", sa.Integer, nullable=False),
        sa.Column("paused", sa.Boolean, nullable=False),
        sa.Column("trial_plan_id", sa.String(64)),
        sa.Column("trial_ends_at", UTCDateTime),
        sa.Column("trial_status", sa.String(16)),
        sa.Column("trial_reminded", sa.Boolean, nullable=False),
        sa.Column("first_payment_at", UTCDateTime),
        sa.Column("created_at", UTCDateTime, nullable=False),
        sa.Column("updated_at", UTCDateTime, nullable=False),
    )
    op.create_index(
        "ix_billing_accounts_trial", "billing_accounts", ["trial_status", "trial_ends_at"]
    )
    op.create_table(
        "stripe_events",
        sa.Column("id", sa.String(80), primary_key=True),
        sa.Column("type", sa.String(80), nullable=False),
        sa.Column("created", sa.BigInteger, nullable=False),
        sa.Column("workspace_id", sa.String(40)),
        sa.Column("received_at", UTCDateTime, nullable=False),
    )
    op.create_table(
        "billing_payments",
        sa.Column("id", sa.String(80), primary_key=True),
        _workspace(),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("amount_cents", sa.BigInteger, nullable=False),
        sa.Column("currency", sa.String(8), nullable=False),
        sa.Column("credits_micros", sa.BigInteger),
        sa.Column("refunded_cents", sa.BigInteger, nullable=False),
        sa.Column("disputed_cents", sa.BigInteger, nullable=False),
        sa.Column("clawed_micros", sa.BigInteger, nullable=False),
        sa.Column("invoice_id", sa.String(80)),
        sa.Column("fingerprint", sa.String(64)),
        sa.Column("description", sa.String(200)),
        sa.Column("created_at", UTCDateTime, nullable=False),
    )
    op.create_index(
        "ix_billing_payments_workspace", "billing_payments", ["workspace_id", "created_at"]
    )
    op.create_table(
        "trial_claims",
        sa.Column("subject", sa.String(120), primary_key=True),
        sa.Column("workspace_id", sa.String(40), nullable=False),
        sa.Column("created_at", UTCDateTime, nullable=False),
    )
    op.create_table(
        "coupons",
        sa.Column("id", sa.String(40), primary_key=True),
        sa.Column("code", sa.String(64), nullable=False, unique=True),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("percent_off", sa.Integer),
        sa.Column("amount_off_cents", sa.BigInteger),
        sa.Column("credits_micros", sa.BigInteger),
        sa.Column("duration", sa.String(16), nullable=False),
        sa.Column("stripe_coupon_id", sa.String(80)),
        sa.Column("plans", JsonValue),
        sa.Column("expires_at", UTCDateTime),
        sa.Column("max_redemptions", sa.Integer),
        sa.Column("redemptions", sa.Integer, nullable=False),
        sa.Column("created_by", sa.String(40)),
        sa.Column("created_at", UTCDateTime, nullable=False),
        sa.Column("disabled_at", UTCDateTime),
    )
    op.create_table(
        "coupon_redemptions",
        sa.Column(
            "coupon_id",
            sa.String(40),
            sa.ForeignKey("coupons.id", ondelete="CASCADE"),
            primary_key=True,
        ),
        _workspace(primary_key=True),
        sa.Column("user_id", sa.String(40)),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("created_at", UTCDateTime, nullable=False),
    )
    op.create_table(
        "referral_codes",
        sa.Column("code", sa.String(32), primary_key=True),
        sa.Column(
            "user_id",
            sa.String(40),
            sa.ForeignKey("users.id", ondelete="CASCADE"),
            nullable=False,
            unique=True,
        ),
        sa.Column("created_at", UTCDateTime, nullable=False),
    )
    op.create_table(
        "referrals",
        _workspace(primary_key=True),
        sa.Column("referrer_id", sa.String(40), nullable=False),
        sa.Column("referrer_workspace_id", sa.String(40)),
        sa.Column("code", sa.String(32), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("reason", sa.String(120)),
        sa.Column("created_at", UTCDateTime, nullable=False),
        sa.Column("settled_at", UTCDateTime),
    )
    op.create_index("ix_referrals_referrer", "referrals", ["referrer_id"])


def downgrade() -> None:
    op.drop_index("ix_referrals_referrer", "referrals")
    for table in (
        "referrals",
        "referral_codes",
        "coupon_redemptions",
        "coupons",
        "trial_claims",
        "billing_payments",
        "stripe_events",
        "billing_accounts",
    ):
        op.drop_table(table)
    with op.batch_alter_table("credit_ledger") as batch:
        batch.drop_constraint("uq_credit_ledger_reference", type_="unique")
        batch.drop_column("reference")
