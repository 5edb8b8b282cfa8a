"""The audit trail: every change, who made it, before and after (secrets masked)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import insert

from perpetuo.control.actor import Actor
from perpetuo.store.aio import AsyncConnection
from perpetuo.store.schema import audit_log
from perpetuo.store.timeutil import utcnow

# Fields that never enter the audit log in clear, whatever the object.
SECRET_FIELDS = frozenset(
    {
        "password",
        "password_hash",
        "api_key",
        "key",
        "key_hash",
        "previous_hash",
        "secret",
        "ciphertext",
        "nonce",
        "token",
        "token_hash",
        "refresh_token",
        "refresh_hash",
    }
)


TARGET_ID_MAX: int = audit_log.c.target_id.type.length  # type: ignore[attr-defined]


def mask(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: "***" if k in SECRET_FIELDS else mask(v) for k, v in value.items()}
    if isinstance(value, list):
        return [mask(v) for v in value]
    return value


async def record(
    conn: AsyncConnection,
    actor: Actor,
    action: str,
    *,
    workspace_id: str | None,
    target_type: str,
    target_id: str | None,
    before: dict[str, Any] | None = None,
    after: dict[str, Any] | None = None,
) -> None:
    """Written in the same transaction as the change it describes."""
    await conn.execute(
        insert(audit_log).values(
            workspace_id=workspace_id,
            actor_type=actor.kind,
            actor_id=actor.audit_id,
            action=action,
            target_type=target_type,
            # Ids a person chose (aliases) can outgrow the column; before/after keep them whole.
            target_id=target_id[:TARGET_ID_MAX] if target_id else target_id,
            before=mask(before) if before is not None else None,
            after=mask(after) if after is not None else None,
            ip=actor.ip,
            user_agent=(actor.user_agent or "")[:300] or None,
            created_at=utcnow(),
        )
    )
