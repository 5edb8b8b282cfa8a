"""Identifiers: a type prefix plus random base32, readable in logs and URLs."""

from __future__ import annotations

import base64
import secrets
import time
from random import getrandbits


def new_id(prefix: str) -> str:
    """e.g. `ws_3k2x...`: 80 random bits, enough that ids are unguessable as well as unique."""
    raw = base64.b32encode(secrets.token_bytes(10)).decode("ascii").lower()
    return f"{prefix}_{raw}"


def new_request_id() -> str:
    """`req_` and 24 hex digits: the time in milliseconds (11), then 52 random bits. Later ids
    sort later, so request-log rows are added at the end of the id index rather than anywhere
    in it (SQLite, 1,000-row batches: 32 -> 25 µs a row). Request ids label requests and are
    not secrets: `random`, with no system call per request."""
    return f"req_{int(time.time() * 1000):011x}{getrandbits(52):013x}"
