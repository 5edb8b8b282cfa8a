"""Alerting tables (control/alerts/): rules, the channels they notify, each alert's state,
the events sent (the history) and every delivery attempt's outcome.

A rule or channel with no `workspace_id` is the platform operator's. Channel secrets (webhook
URLs and signing keys, Slack URLs) are sealed with the credential keyring, as provider keys
are. State rows change only through conditional updates (control/alerts/state.py), which is
how several instances agree that an alert fires once. Registered on the one `metadata` by
store/schema.py.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import (
    Boolean,
    Column,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    Table,
)

from perpetuo.store.schema import JsonValue, UTCDateTime, created_column, metadata


def _workspace() -> Column[Any]:
    """Null for the platform's own; a workspace's go with it."""
    return Column("workspace_id", ForeignKey("workspaces.id", ondelete="CASCADE"))


alert_rules = Table(
    "alert_rules",
    metadata,
    Column("id", String(40), primary_key=True),
    _workspace(),
    Column("name", String(200), nullable=False),
    Column("kind", String(32), nullable=False),  # control/alerts/rules.py KINDS
    Column("params", JsonValue, nullable=False, default=dict),
    Column("channel_ids", JsonValue, nullable=False, default=list),
    Column("enabled", Boolean, nullable=False, default=True),
    Column("for_minutes", Integer, nullable=False, default=0),
    Column("renotify_minutes", Integer),  # null: never re-sent while firing
    Column("created_by", String(40)),
    created_column(),
    Column("updated_at", UTCDateTime, nullable=False),
    Index("ix_alert_rules_workspace", "workspace_id"),
)

alert_channels = Table(
    "alert_channels",
    metadata,
    Column("id", String(40), primary_key=True),
    _workspace(),
    Column("name", String(200), nullable=False),
    Column("kind", String(16), nullable=False),  # webhook | slack | email
    Column("settings", JsonValue, nullable=False, default=dict),  # what is not secret
    Column("display", String(300), nullable=False, default=""),  # e.g. the URL's host
    Column("ciphertext", LargeBinary),  # the sealed secret part, JSON
    Column("nonce", LargeBinary),
    Column("key_id", String(40)),
    Column("enabled", Boolean, nullable=False, default=True),
    Column("created_by", String(40)),
    created_column(),
    Column("updated_at", UTCDateTime, nullable=False),
    Index("ix_alert_channels_workspace", "workspace_id"),
)

# One row per (rule, subject): ok -> pending -> firing -> ok. `last_true_at` is bumped by
# every instance that sees the condition; the alert resolves once nobody has for a while.
alert_states = Table(
    "alert_states",
    metadata,
    Column("id", String(40), primary_key=True),
    Column("rule_id", String(40), nullable=False),
    _workspace(),
    Column("subject", String(300), nullable=False),
    Column("status", String(16), nullable=False),  # ok | pending | firing
    Column("pending_since", UTCDateTime),
    Column("last_true_at", UTCDateTime),
    Column("fired_at", UTCDateTime),
    Column("notified_at", UTCDateTime),
    Column("resolved_at", UTCDateTime),
    Column("resolve_at", UTCDateTime),  # set: resolves then (a budget's period end)
    Column("value", Float),
    Column("summary", String(500)),
    Column("detail", JsonValue),
    created_column(),
    Index("uq_alert_states_rule_subject", "rule_id", "subject", unique=True),
    Index("ix_alert_states_status", "status"),
)

# What was sent: firing, re-notified, resolved and test events (the history).
alert_events = Table(
    "alert_events",
    metadata,
    Column("id", String(40), primary_key=True),
    _workspace(),
    Column("rule_id", String(40)),  # null: a test, or a budget alert without a rule
    Column("state_id", String(40)),
    Column("type", String(24), nullable=False),  # alert.firing | alert.resolved | ...
    Column("kind", String(32), nullable=False),
    Column("subject", String(300), nullable=False),
    Column("summary", String(500), nullable=False),
    Column("payload", JsonValue, nullable=False),
    created_column(),
    Index("ix_alert_events_workspace_time", "workspace_id", "created_at"),
)

# One row per (event, channel): claimed by a conditional update like the mail outbox.
alert_deliveries = Table(
    "alert_deliveries",
    metadata,
    Column("id", String(40), primary_key=True),
    Column("event_id", String(40), nullable=False),
    _workspace(),
    Column("channel_id", String(40)),  # null: the workspace's alert_webhook_url setting
    Column("channel_kind", String(16), nullable=False),
    Column("status", String(16), nullable=False),  # pending | sending | sent | failed
    Column("attempts", Integer, nullable=False, default=0),
    Column("next_attempt_at", UTCDateTime, nullable=False),
    Column("claimed_by", String(64)),
    Column("lease_until", UTCDateTime),
    Column("response_status", Integer),
    Column("last_error", String(500)),
    created_column(),
    Column("delivered_at", UTCDateTime),
    Index("ix_alert_deliveries_due", "status", "next_attempt_at"),
    Index("ix_alert_deliveries_event", "event_id"),
)
