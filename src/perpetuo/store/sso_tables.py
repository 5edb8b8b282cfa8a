"""Single sign-on tables (control/sso/): workspaces' identity providers, the e-mail domains a
platform administrator verified for a workspace, the provider identities linked to accounts,
sign-ins in flight, and which provider opened a session.

A workspace provider's client secret is sealed with the credential keyring, as provider keys
are. Providers from the config file have no row: they are keyed by their name there, a
workspace provider by its id. Registered on the one `metadata` by store/schema.py.
"""

from __future__ import annotations

from sqlalchemy import Boolean, Column, ForeignKey, Index, LargeBinary, String, Table, Text

from perpetuo.store.schema import JsonValue, UTCDateTime, created_column, metadata

sso_providers = Table(
    "sso_providers",
    metadata,
    Column("id", String(40), primary_key=True),
    Column("workspace_id", ForeignKey("workspaces.id", ondelete="CASCADE"), nullable=False),
    Column("name", String(100), nullable=False),  # the button says "Sign in with <name>"
    Column("kind", String(16), nullable=False),  # oidc | google
    Column("issuer", String(500), nullable=False),
    Column("client_id", String(255), nullable=False),
    # How the client authenticates at the token endpoint, as registered at the provider.
    Column("token_auth_method", String(32), nullable=False),
    Column("ciphertext", LargeBinary, nullable=False),  # the client secret, sealed
    Column("nonce", LargeBinary, nullable=False),
    Column("key_id", String(40), nullable=False),
    Column("last4", String(4), nullable=False),
    Column("scopes", JsonValue, nullable=False),
    Column("domains", JsonValue, nullable=False),  # e-mail domains; each needs verifying
    Column("groups_claim", String(200), nullable=False),
    Column("role_mapping", JsonValue, nullable=False),  # {group: role}
    Column("default_role", String(64), nullable=False),
    Column("unmapped_groups", String(16), nullable=False),  # refuse | default
    Column("jit", Boolean, nullable=False),  # create accounts for people not known yet
    Column("sso_required", Boolean, nullable=False),  # no passwords for its domains
    Column("enabled", Boolean, nullable=False),
    Column("created_by", ForeignKey("users.id", ondelete="SET NULL")),
    created_column(),
    Column("updated_at", UTCDateTime, nullable=False),
    Index("ix_sso_providers_workspace", "workspace_id"),
)

# A domain belongs to at most one workspace: the primary key says so. Only a platform
# administrator verifies one, because a workspace's provider may then vouch for every
# address in it (including accounts that exist already).
sso_domains = Table(
    "sso_domains",
    metadata,
    Column("domain", String(253), primary_key=True),
    Column("workspace_id", ForeignKey("workspaces.id", ondelete="CASCADE"), nullable=False),
    Column("verified_by", ForeignKey("users.id", ondelete="SET NULL")),
    Column("verified_at", UTCDateTime, nullable=False),
    Index("ix_sso_domains_workspace", "workspace_id"),
)

sso_identities = Table(
    "sso_identities",
    metadata,
    Column("id", String(40), primary_key=True),
    Column("user_id", ForeignKey("users.id", ondelete="CASCADE"), nullable=False),
    Column("provider_key", String(80), nullable=False),  # config name or provider id
    Column("subject", String(255), nullable=False),  # the provider's `sub` (GitHub: user id)
    Column("email", String(320), nullable=False),  # as the provider last said
    created_column(),
    Column("last_login_at", UTCDateTime, nullable=False),
    Index("uq_sso_identities_subject", "provider_key", "subject", unique=True),
    Index("ix_sso_identities_user", "user_id"),
)

# A sign-in between its redirect to the provider and the provider's answer. Only hashes of
# the state and of the browser's binding cookie are kept; a row is used at most once.
sso_requests = Table(
    "sso_requests",
    metadata,
    Column("state_hash", String(64), primary_key=True),
    Column("provider_key", String(80), nullable=False),
    Column("browser_hash", String(64), nullable=False),
    Column("nonce", String(100), nullable=False),
    Column("code_verifier", String(128), nullable=False),
    Column("next_path", String(500)),
    created_column(),
    Column("expires_at", UTCDateTime, nullable=False),
    Column("used_at", UTCDateTime),
    Index("ix_sso_requests_expires", "expires_at"),
)

# Sessions opened through a provider: for signing out at the provider too.
sso_sessions = Table(
    "sso_sessions",
    metadata,
    Column("session_id", ForeignKey("sessions.id", ondelete="CASCADE"), primary_key=True),
    Column("provider_key", String(80), nullable=False),
    Column("id_token", Text),  # the id_token_hint of the provider's logout
    created_column(),
)
