"""Virtual API keys: format, generation and the keyed hash they are stored as.

`pk_<environment>_<43 chars>` (`pk_live_`, `pk_test_`, or an environment the operator
added, such as `pk_staging_`): 256 random bits, base64url. Only an HMAC-SHA256 under a
server-derived key is stored, plus a display prefix and the last four characters; the full
key is shown once. The environment is a column of the key's row, so the prefix never has to
be parsed to look a key up: one hash, whatever the environment.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from dataclasses import dataclass

PREFIX = "pk_"
ENVIRONMENT = re.compile(r"^[a-z][a-z0-9]{1,7}$")  # config/keys.py says which exist
_KEY = re.compile(r"^pk_[a-z][a-z0-9]{1,7}_")
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
    if not ENVIRONMENT.match(environment):
        raise ValueError("an environment is 2 to 8 lower-case letters or digits")
    return NewKey(f"{PREFIX}{environment}_{secrets.token_urlsafe(_SECRET_BYTES)}", environment)


def looks_like_key(token: str) -> bool:
    return 40 <= len(token) <= 100 and _KEY.match(token) is not None


def key_hash(hmac_key: bytes, token: str) -> str:
    return hmac.new(hmac_key, token.encode(), hashlib.sha256).hexdigest()


def token_hash(token: str) -> str:
    """For random single-use tokens (refresh, invite): already unguessable, so plain SHA-256."""
    return hashlib.sha256(token.encode()).hexdigest()
