"""Keys derived from the server secret: they must never change for a given secret, or every
stored API-key hash and issued session would stop matching after an upgrade."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from perpetuo.auth.secrets import SECRET_FILE, DerivedKeys, _derive, load_server_secret


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


def test_gateways_starting_together_share_the_one_secret_stored(tmp_path):
    # Workers of one gateway, or instances on one volume, create the secret at once: all of
    # them must end with the same one (no error, no half-written file read).
    for attempt in range(20):
        data_dir = tmp_path / str(attempt)
        start = threading.Barrier(16)

        def load(data_dir: Path = data_dir, start: threading.Barrier = start) -> bytes:
            start.wait()
            return load_server_secret(None, data_dir, create=True)

        with ThreadPoolExecutor(16) as pool:
            values = list(pool.map(lambda _: load(), range(16)))
        assert len(set(values)) == 1 and len(values[0]) >= 32
        assert (data_dir / SECRET_FILE).read_bytes().strip() == values[0]
        assert sorted(p.name for p in data_dir.iterdir()) == [SECRET_FILE]  # no drafts left
