"""Signed unsubscribe links and people's mail preferences.

An unsubscribe token names a person and a category and carries an HMAC under a key derived
from the server secret: it needs no sign-in and no database row, and it cannot be forged or
pointed at someone else. It never expires (an old mail's link must still work) and using it
twice does no harm.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from typing import Any

from sqlalchemy import select, update

from perpetuo.control.mail.catalog import CATEGORIES
from perpetuo.store.aio import AsyncConnection
from perpetuo.store.schema import users

ALL = "all"  # a token for every category at once


def unsubscribe_key(signing_key: bytes) -> bytes:
    return hmac.new(signing_key, b"perpetuo/mail-unsubscribe/v1", hashlib.sha256).digest()


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def make_token(key: bytes, user_id: str, category: str) -> str:
    payload = f"{user_id}:{category}".encode()
    signature = hmac.new(key, payload, hashlib.sha256).digest()[:16]
    return f"{_b64(payload)}.{_b64(signature)}"


def read_token(key: bytes, token: str) -> tuple[str, str] | None:
    """(user id, category) of a genuine token; None for anything else."""
    encoded, _, signature = token.strip().partition(".")
    try:
        payload, given = _unb64(encoded), _unb64(signature)
    except (ValueError, TypeError):
        return None
    expected = hmac.new(key, payload, hashlib.sha256).digest()[:16]
    if not hmac.compare_digest(given, expected):
        return None
    user_id, _, category = payload.decode("utf-8", "replace").partition(":")
    if not user_id or (category != ALL and category not in CATEGORIES):
        return None
    return user_id, category


def preferences_view(opted_out: list[str] | None) -> dict[str, Any]:
    off = set(opted_out or ())
    return {
        "object": "mail_preferences",
        "categories": [
            {"id": cid, "description": label, "enabled": cid not in off}
            for cid, label in CATEGORIES.items()
        ],
    }


async def opted_out(conn: AsyncConnection, user_id: str) -> list[str]:
    value = await conn.scalar(select(users.c.mail_opt_out).where(users.c.id == user_id))
    return list(value or ())


async def set_opted_out(conn: AsyncConnection, user_id: str, categories: set[str]) -> list[str]:
    value = sorted(c for c in categories if c in CATEGORIES)
    await conn.execute(update(users).where(users.c.id == user_id).values(mail_opt_out=value))
    return value
