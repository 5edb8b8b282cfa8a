"""What the gateway keeps of its clients' conversations: semantic response-cache entries,
Responses API answers (for `previous_response_id`) and chat sessions with their messages.
Registered on the one `metadata` by store/schema.py.
"""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Column,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    Table,
    Text,
)

from perpetuo.store.schema import JsonValue, UTCDateTime, created_column, metadata

# Semantic response-cache entries: loaded into each instance's in-process vector index.
semantic_cache_entries = Table(
    "semantic_cache_entries",
    metadata,
    Column(
        "seq", BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True
    ),
    Column("id", String(40), nullable=False, unique=True),
    Column("workspace_id", ForeignKey("workspaces.id", ondelete="CASCADE"), nullable=False),
    Column("alias", String(200), nullable=False),
    Column("partition", String(64), nullable=False),  # hash of everything but the prompt
    Column("embedder", String(200), nullable=False),  # which model made the vector
    Column("vector", LargeBinary, nullable=False),  # float32, unit length
    Column("answer", LargeBinary, nullable=False),  # a CachedAnswer (msgspec JSON)
    created_column(),
    Column("expires_at", UTCDateTime, nullable=False),
    Index("ix_semantic_cache_entries_workspace", "workspace_id", "seq"),
    Index("ix_semantic_cache_entries_expires", "expires_at"),  # the minutely purge
)

# Responses API answers kept for `previous_response_id`, retrieval and input-item listing.
# `workspace_id` is NULL for requests made with the master key (the platform's own scope).
stored_responses = Table(
    "stored_responses",
    metadata,
    # Ids are unique per workspace, not globally: a provider (perhaps a tenant's) chooses
    # native answers' ids, and one workspace's ids must never shadow another's.
    Column("scope", String(40), primary_key=True),  # the workspace id, "-" for the master key
    Column("id", String(80), primary_key=True),
    Column("workspace_id", ForeignKey("workspaces.id", ondelete="CASCADE")),
    Column("key_id", String(40)),
    Column("previous_id", String(80)),  # the response this one continued
    Column("alias", String(200), nullable=False),
    Column("deployment", String(400)),  # who served it: native continuation needs the same one
    Column("upstream_id", String(200)),  # the provider's own response id (native lane only)
    Column("instructions", JsonValue),
    Column("input_items", JsonValue, nullable=False),  # this turn's input, as items
    Column("response", JsonValue, nullable=False),  # the response object (output included)
    created_column(),
    Column("expires_at", UTCDateTime, nullable=False),
    Index("ix_stored_responses_workspace", "workspace_id", "created_at"),
    Index("ix_stored_responses_expires", "expires_at"),
)

# Chat sessions (control/chat_sessions.py): conversations the gateway keeps for a client,
# injected into each chat request posted to them. Messages are ordered by `seq`; `id` is
# made when a message is queued (before it is written) so that a read can tell apart the
# rows written and those still queued.
chat_sessions = Table(
    "chat_sessions",
    metadata,
    Column("id", String(40), primary_key=True),
    Column("workspace_id", ForeignKey("workspaces.id", ondelete="CASCADE"), nullable=False),
    Column("key_id", String(40)),  # null: made with the master key
    Column("user_id", String(40)),  # the key's owner, who may use the session with any key
    Column("model", String(200), nullable=False),
    Column("system_prompt", Text),
    Column("metadata", JsonValue, nullable=False, default=dict),
    Column("max_history_tokens", Integer, nullable=False),
    Column("summary_model", String(200)),  # null: old turns are dropped, not summarized
    Column("summary", Text),
    Column("summarized_through", BigInteger),  # the last message seq the summary covers
    created_column(),
    Column("updated_at", UTCDateTime, nullable=False),
    Column("expires_at", UTCDateTime, nullable=False),
    Index("ix_chat_sessions_workspace", "workspace_id", "created_at"),
    Index("ix_chat_sessions_expires", "expires_at"),
)

chat_session_messages = Table(
    "chat_session_messages",
    metadata,
    Column(
        "seq", BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True
    ),
    Column("id", String(40), nullable=False, unique=True),
    Column(
        "session_id",
        ForeignKey("chat_sessions.id", ondelete="CASCADE"),
        nullable=False,
    ),
    Column("message", JsonValue, nullable=False),  # a chat message, as sent or answered
    Column("tokens", Integer, nullable=False),  # its size against the session's budget
    Column("request_id", String(64)),  # the request that posted or answered it
    created_column(),
    Index("ix_chat_session_messages_session", "session_id", "seq"),
)
