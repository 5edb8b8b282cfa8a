"""Billing tables (control/billing/): each workspace's paying account, the Stripe events seen,
the payments credited, trials, coupons and referrals.

Money itself is never stored here: every credit or debit is a `credit_ledger` row (with its
Stripe reference), and a balance is always the ledger's sum. These tables hold what makes
the ledger rows idempotent (a payment is credited once, an event applied once) and the
subscription state the plan follows. Registered on the one `metadata` by store/schema.py.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import BigInteger, Boolean, Column, ForeignKey, Index, Integer, String, Table

from perpetuo.store.schema import JsonValue, UTCDateTime, created_column, metadata


def _workspace(primary_key: bool = False) -> Column[Any]:
    return Column(
        "workspace_id",
        ForeignKey("workspaces.id", ondelete="CASCADE"),
        primary_key=primary_key,
        nullable=False,
    )


billing_accounts = Table(
    "billing_accounts",
    metadata,
    _workspace(primary_key=True),
    Column("customer_id", String(80), unique=True),  # Stripe customer, made at first checkout
    Column("plan_id", String(64)),  # the catalog plan in force (null: none chosen)
    Column("interval", String(8)),  # month | year
    Column("subscription_id", String(80)),
    # Stripe's status: trialing | active | past_due | unpaid | canceled | incomplete ...
    Column("subscription_status", String(24)),
    Column("current_period_end", UTCDateTime),
    Column("cancel_at_period_end", Boolean, nullable=False, default=False),
    # Stripe's `created` of the event that last set the subscription state: older ones lose.
    Column("state_at", BigInteger, nullable=False, default=0),
    Column("past_due_since", UTCDateTime),  # first failed renewal; grace runs from here
    Column("auto_recharge", Boolean, nullable=False, default=False),
    Column("recharge_threshold_micros", BigInteger, nullable=False, default=0),
    Column("recharge_amount_micros", BigInteger, nullable=False, default=0),
    # One off-session charge per crossing of the threshold: cleared by a conditional update
    # when a charge is started, set again once the balance is back above the threshold.
    Column("recharge_armed", Boolean, nullable=False, default=True),
    Column("recharge_failed_at", UTCDateTime),
    Column("low_balance_armed", Boolean, nullable=False, default=True),
    Column("crossings", Integer, nullable=False, default=0),  # names idempotency keys
    Column("paused", Boolean, nullable=False, default=False),  # negative balance, keys paused
    Column("trial_plan_id", String(64)),
    Column("trial_ends_at", UTCDateTime),
    Column("trial_status", String(16)),  # active | ended | converted (null: never)
    Column("trial_reminded", Boolean, nullable=False, default=False),
    Column("first_payment_at", UTCDateTime),
    created_column(),
    Column("updated_at", UTCDateTime, nullable=False),
    Index("ix_billing_accounts_trial", "trial_status", "trial_ends_at"),
)

# Every Stripe event applied, by its id: inserting the row is the claim, in the transaction
# that applies the event, so a replay or a concurrent duplicate finds it and does nothing.
stripe_events = Table(
    "stripe_events",
    metadata,
    Column("id", String(80), primary_key=True),
    Column("type", String(80), nullable=False),
    Column("created", BigInteger, nullable=False),  # Stripe's timestamp
    Column("workspace_id", String(40)),
    Column("received_at", UTCDateTime, nullable=False),
)

# One row per Stripe payment (PaymentIntent) the workspace's credits depend on. Refunds and
# disputes move `clawed_micros` by conditional updates; a refund seen before its payment
# leaves `credits_micros` null until the payment's own event fills it.
billing_payments = Table(
    "billing_payments",
    metadata,
    Column("id", String(80), primary_key=True),  # the PaymentIntent id
    _workspace(),
    Column("kind", String(16), nullable=False),  # topup | recharge | subscription | unknown
    Column("amount_cents", BigInteger, nullable=False, default=0),
    Column("currency", String(8), nullable=False, default="usd"),
    Column("credits_micros", BigInteger),  # what the payment granted (null: not yet known)
    Column("refunded_cents", BigInteger, nullable=False, default=0),
    Column("disputed_cents", BigInteger, nullable=False, default=0),
    Column("clawed_micros", BigInteger, nullable=False, default=0),
    Column("invoice_id", String(80)),
    Column("fingerprint", String(64)),  # the card's, for trial and referral abuse checks
    Column("description", String(200)),
    created_column(),
    Index("ix_billing_payments_workspace", "workspace_id", "created_at"),
)

# Who has had a trial: `user:<id>`, `workspace:<id>`, `card:<fingerprint>`. The primary key
# makes a second trial for any of them fail atomically, on every engine.
trial_claims = Table(
    "trial_claims",
    metadata,
    Column("subject", String(120), primary_key=True),
    Column("workspace_id", String(40), nullable=False),
    created_column(),
)

coupons = Table(
    "coupons",
    metadata,
    Column("id", String(40), primary_key=True),
    Column("code", String(64), nullable=False, unique=True),  # what people type, upper case
    Column("kind", String(16), nullable=False),  # percent | amount | credits
    Column("percent_off", Integer),
    Column("amount_off_cents", BigInteger),
    Column("credits_micros", BigInteger),
    Column("duration", String(16), nullable=False, default="once"),  # once | forever
    Column("stripe_coupon_id", String(80)),
    Column("plans", JsonValue),  # plan ids it applies to; null: any
    Column("expires_at", UTCDateTime),
    Column("max_redemptions", Integer),
    Column("redemptions", Integer, nullable=False, default=0),
    Column("created_by", String(40)),
    created_column(),
    Column("disabled_at", UTCDateTime),
)

coupon_redemptions = Table(
    "coupon_redemptions",
    metadata,
    Column("coupon_id", ForeignKey("coupons.id", ondelete="CASCADE"), primary_key=True),
    _workspace(primary_key=True),
    Column("user_id", String(40)),
    # credits: applied at once; percent/amount: waiting for the next checkout, then used.
    Column("status", String(16), nullable=False),
    created_column(),
)

referral_codes = Table(
    "referral_codes",
    metadata,
    Column("code", String(32), primary_key=True),
    Column("user_id", ForeignKey("users.id", ondelete="CASCADE"), nullable=False, unique=True),
    created_column(),
)

# A workspace referred by someone's code; rewarded on the workspace's first payment.
referrals = Table(
    "referrals",
    metadata,
    _workspace(primary_key=True),  # the referred workspace
    Column("referrer_id", String(40), nullable=False),
    Column("referrer_workspace_id", String(40)),  # where the referrer's reward goes
    Column("code", String(32), nullable=False),
    Column("status", String(16), nullable=False),  # pending | rewarded | refused
    Column("reason", String(120)),
    created_column(),
    Column("settled_at", UTCDateTime),
    Index("ix_referrals_referrer", "referrer_id"),
)
