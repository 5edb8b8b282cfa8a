"""Identifiers: a type prefix plus random base32, readable in logs and URLs."""

from __future__ import annotations

import base64
import secrets


def new_id(prefix: str) -> str:
    """e.g. `ws_3k2x...`: 80 random bits, enough that ids are unguessable as well as unique."""
    raw = base64.b32encode(secrets.token_bytes(10)).decode("ascii").lower()
    return f"{prefix}_{raw}"
