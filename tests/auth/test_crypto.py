"""Provider credentials at rest: AES-256-GCM, bound to workspace and credential id."""

from __future__ import annotations

import dataclasses

import pytest

from perpetuo.auth.credential_crypto import CredentialCryptoError, Keyring, new_key_spec


def test_round_trip_and_random_nonces():
    ring = Keyring.parse(new_key_spec("k1"))
    a = ring.seal("sk-secret-value", "ws_a", "cred_1")
    b = ring.seal("sk-secret-value", "ws_a", "cred_1")
    assert a.nonce != b.nonce and a.ciphertext != b.ciphertext
    assert len(a.nonce) == 12 and a.key_id == "k1"
    assert b"sk-secret" not in a.ciphertext
    assert ring.open(a, "ws_a", "cred_1") == "sk-secret-value"


def test_tampered_ciphertext_is_rejected():
    ring = Keyring.parse(new_key_spec("k1"))
    sealed = ring.seal("sk-secret-value", "ws_a", "cred_1")
    flipped = bytes([sealed.ciphertext[0] ^ 1]) + sealed.ciphertext[1:]
    with pytest.raises(CredentialCryptoError, match="tampered"):
        ring.open(dataclasses.replace(sealed, ciphertext=flipped), "ws_a", "cred_1")


def test_ciphertext_bound_to_workspace_and_credential():
    ring = Keyring.parse(new_key_spec("k1"))
    sealed = ring.seal("sk-secret-value", "ws_a", "cred_1")
    with pytest.raises(CredentialCryptoError):
        ring.open(sealed, "ws_b", "cred_1")  # copied into another workspace
    with pytest.raises(CredentialCryptoError):
        ring.open(sealed, "ws_a", "cred_2")  # moved to another row


def test_rotation_keeps_old_keys_for_decryption_only():
    old = new_key_spec("k1")
    sealed = Keyring.parse(old).seal("sk-value", "ws", "cred")
    rotated = Keyring.parse(f"{new_key_spec('k2')},{old}")
    assert rotated.active_id == "k2"
    assert rotated.open(sealed, "ws", "cred") == "sk-value"
    assert rotated.seal("x", "ws", "cred").key_id == "k2"
    with pytest.raises(CredentialCryptoError, match="not in the keyring"):
        Keyring.parse(new_key_spec("k3")).open(sealed, "ws", "cred")


@pytest.mark.parametrize("spec", ["k1", "k1:not-base64!!", "k1:" + "QQ" * 4, ":abc"])
def test_bad_keyring_specs(spec):
    with pytest.raises(CredentialCryptoError):
        Keyring.parse(spec)
