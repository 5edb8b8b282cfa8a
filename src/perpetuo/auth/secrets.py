"""The server secret and the keys derived from it.

One secret (PERPETUO_SECRET_KEY, or generated once into the data directory for the embedded
default) feeds HKDF, which derives an independent key for each purpose: API-key hashing,
session tokens. Every instance of a deployment must share the secret.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import secrets
import tempfile
from dataclasses import dataclass
from pathlib import Path

SECRET_FILE = "secret.key"  # noqa: S105 (a file name, not a secret)


@dataclass(frozen=True)
class DerivedKeys:
    api_key_hmac: bytes
    jwt_signing: bytes

    @classmethod
    def from_secret(cls, secret: bytes) -> DerivedKeys:
        return cls(
            api_key_hmac=_derive(secret, b"perpetuo/api-key-hmac/v1"),
            jwt_signing=_derive(secret, b"perpetuo/jwt-signing/v1"),
        )


def _derive(secret: bytes, info: bytes) -> bytes:
    """HKDF-SHA256 (RFC 5869) with no salt, 32 bytes out: one block of expand, so two HMACs.
    The standard library's HMAC spares start-up loading a cryptography backend."""
    prk = hmac.new(b"\0" * 32, secret, hashlib.sha256).digest()
    return hmac.new(prk, info + b"\x01", hashlib.sha256).digest()


def load_server_secret(configured: str | None, data_dir: Path, *, create: bool) -> bytes:
    """The configured secret, else the one stored in the data directory (created if asked)."""
    if configured:
        if len(configured) < 32:
            raise ValueError("PERPETUO_SECRET_KEY must be at least 32 characters")
        return configured.encode()
    path = data_dir / SECRET_FILE
    try:
        return path.read_bytes().strip()
    except FileNotFoundError:
        if not create:
            raise
    data_dir.mkdir(mode=0o700, parents=True, exist_ok=True)  # private when we create it
    value = base64.urlsafe_b64encode(secrets.token_bytes(32)).rstrip(b"=")
    # Written whole under another name, then linked into place: processes starting together
    # (workers, instances on one volume) all end with the one secret that got there first,
    # and none reads a file half written.
    fd, draft = tempfile.mkstemp(prefix=".secret-", dir=data_dir)  # 0600
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(value + b"\n")
        os.link(draft, path)
    except FileExistsError:
        return path.read_bytes().strip()
    finally:
        os.unlink(draft)
    return value
