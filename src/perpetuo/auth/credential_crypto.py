"""Provider credentials at rest: AES-256-GCM with a keyring for rotation.

Each value gets a random 96-bit nonce; the associated data binds the ciphertext to its
workspace and credential id, so a ciphertext copied to another row or workspace fails to
decrypt. PERPETUO_ENCRYPTION_KEYS holds `id:base64key` entries, comma-separated, the first
being the active key; the others only decrypt (until `perpetuo secrets rotate` re-encrypts).
"""

from __future__ import annotations

import base64
import binascii
import os
import secrets
from dataclasses import dataclass
from pathlib import Path
from typing import Any


class CredentialCryptoError(Exception):
    pass


@dataclass(frozen=True)
class Sealed:
    ciphertext: bytes
    nonce: bytes
    key_id: str


def associated_data(workspace_id: str, credential_id: str) -> bytes:
    return f"perpetuo:credential:v1:{workspace_id}:{credential_id}".encode()


class Keyring:
    def __init__(self, keys: list[tuple[str, bytes]]) -> None:
        if not keys:
            raise CredentialCryptoError("the keyring is empty")
        for key_id, key in keys:
            if len(key) != 32:
                raise CredentialCryptoError(f"encryption key {key_id!r} must be 32 bytes")
        self.active_id = keys[0][0]
        self._keys = dict(keys)
        self._ciphers: dict[str, Any] = {}

    def _cipher(self, key_id: str) -> Any:
        # cryptography's AES (7 MiB resident) loads on the first credential sealed or
        # opened, not at start-up: a gateway without stored credentials never needs it.
        cipher = self._ciphers.get(key_id)
        if cipher is None:
            from cryptography.hazmat.primitives.ciphers.aead import AESGCM

            cipher = self._ciphers[key_id] = AESGCM(self._keys[key_id])
        return cipher

    @classmethod
    def parse(cls, spec: str) -> Keyring:
        keys = []
        for entry in (e.strip() for e in spec.split(",")):
            if not entry:
                continue
            key_id, sep, encoded = entry.partition(":")
            if not sep or not key_id:
                raise CredentialCryptoError("each key must be written as id:base64key")
            try:
                key = base64.urlsafe_b64decode(encoded + "=" * (-len(encoded) % 4))
            except (binascii.Error, ValueError):
                raise CredentialCryptoError(f"encryption key {key_id!r} is not base64") from None
            keys.append((key_id, key))
        return cls(keys)

    @classmethod
    def from_environment(cls, environ: dict[str, str] | None = None) -> Keyring | None:
        env = os.environ if environ is None else environ
        spec = env.get("PERPETUO_ENCRYPTION_KEYS")
        if not spec and (path := env.get("PERPETUO_ENCRYPTION_KEYS_FILE")):
            spec = Path(path).read_text().strip()
        return cls.parse(spec) if spec else None

    def seal(self, plaintext: str, workspace_id: str, credential_id: str) -> Sealed:
        nonce = secrets.token_bytes(12)
        cipher = self._cipher(self.active_id)
        data = cipher.encrypt(
            nonce, plaintext.encode(), associated_data(workspace_id, credential_id)
        )
        return Sealed(data, nonce, self.active_id)

    def open(self, sealed: Sealed, workspace_id: str, credential_id: str) -> str:
        if sealed.key_id not in self._keys:
            raise CredentialCryptoError(f"encryption key {sealed.key_id!r} is not in the keyring")
        cipher = self._cipher(sealed.key_id)
        from cryptography.exceptions import InvalidTag

        try:
            plain = cipher.decrypt(
                sealed.nonce, sealed.ciphertext, associated_data(workspace_id, credential_id)
            )
        except InvalidTag:
            raise CredentialCryptoError(
                "credential failed authentication (tampered or moved)"
            ) from None
        return plain.decode()


def new_key_spec(key_id: str) -> str:
    """A fresh `id:base64key` entry for PERPETUO_ENCRYPTION_KEYS."""
    return f"{key_id}:" + base64.urlsafe_b64encode(secrets.token_bytes(32)).decode().rstrip("=")
