"""Keys derived from the server secret: they must never change for a given secret, or every
stored API-key hash and issued session would stop matching after an upgrade."""

from __future__ import annotations

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from perpetuo.auth.secrets import DerivedKeys, _derive


def test_derivation_matches_rfc5869_test_case_3():
    # RFC 5869 A.3: SHA-256, IKM 22 x 0x0b, no salt, no info; the first 32 bytes of its OKM.
    okm = bytes.fromhex("8da4e775a563c18f715f802a063c5a31b8a11f5c5ee1879ec3454e5f3c738d2d")
    assert _derive(b"\x0b" * 22, b"") == okm


def test_derived_keys_match_a_reference_hkdf():
    secret = b"a-server-secret-of-at-least-32-characters"
    keys = DerivedKeys.from_secret(secret)
    for derived, info in (
        (keys.api_key_hmac, b"perpetuo/api-key-hmac/v1"),
        (keys.jwt_signing, b"perpetuo/jwt-signing/v1"),
    ):
        reference = HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=info)
        assert derived == reference.derive(secret)
    assert keys.api_key_hmac != keys.jwt_signing
