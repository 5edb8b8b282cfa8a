"""Filling a gateway's database with many API keys, fast (straight inserts, real hashes)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import insert

from perpetuo.auth import api_keys as keygen
from perpetuo.auth.secrets import DerivedKeys
from perpetuo.store.database import Database
from perpetuo.store.ids import new_id
from perpetuo.store.schema import api_keys
from perpetuo.store.timeutil import utcnow


async def seed_keys(
    url: str,
    secret: str,
    count: int,
    *,
    limits: dict[str, Any] | None,
    workspace_id: str = "ws_default",
) -> list[str]:
    """Insert `count` keys usable with the server secret `secret`; returns their plaintexts."""
    hmac_key = DerivedKeys.from_secret(secret.encode()).api_key_hmac
    db = Database(url)
    plaintexts: list[str] = []
    rows: list[dict[str, Any]] = []
    now = utcnow()
    for i in range(count):
        new = keygen.generate("live")
        plaintexts.append(new.plaintext)
        rows.append(
            {
                "id": new_id("key"),
                "workspace_id": workspace_id,
                "owner_id": None,
                "name": f"bench-{i}",
                "environment": "live",
                "prefix": new.display_prefix,
                "last4": new.last4,
                "key_hash": keygen.key_hash(hmac_key, new.plaintext),
                "scopes": ["chat", "embeddings", "models:read"],
                "metadata": {},
                "limits": limits or {},
                "created_at": now,
                "updated_at": now,
            }
        )
    try:
        for start in range(0, len(rows), 1000):
            async with db.begin() as conn:
                await conn.execute(insert(api_keys), rows[start : start + 1000])
    finally:
        await db.dispose()
    return plaintexts
