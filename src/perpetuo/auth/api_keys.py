"""Virtual API keys: format, generation and the keyed hash they are stored as.

`pk_live_<43 chars>` / `pk_test_<43 chars>`: 256 random bits, base64url. Only an
HMAC-SHA256 under a server-derived key is stored, plus a display prefix and the last four
characters; the full key is shown once.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass

PREFIX = "pk_"
ENVIRONMENTS = ("live", "test")
_SECRET_BYTES = 32


@dataclass(frozen=True)
class NewKey:
    plaintext: str
    environment: str

    @property
    def display_prefix(self) -> str:
        return self.plaintext[: len(PREFIX) + len(self.environment) + 1 + 4]

    @property
    def last4(self) -> str:
        return self.plaintext[-4:]


def generate(environment: str = "live") -> NewKey:
    if environment not in ENVIRONMENTS:
        raise ValueError(f"environment must be one of {ENVIRONMENTS}")
    return NewKey(f"{PREFIX}{environment}_{secrets.token_urlsafe(_SECRET_BYTES)}", environment)


def looks_like_key(token: str) -> bool:
    return token.startswith(("pk_live_", "pk_test_")) and 40 <= len(token) <= 100


def key_hash(hmac_key: bytes, token: str) -> str:
    return hmac.new(hmac_key, token.encode(), hashlib.sha256).hexdigest()


def token_hash(token: str) -> str:
    """For random single-use tokens (refresh, invite): already unguessable, so plain SHA-256."""
    return hashlib.sha256(token.encode()).hexdigest()
