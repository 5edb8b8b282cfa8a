"""Stored provider credentials: encrypted at rest, masked in every view, re-encrypted on
rotation, and start-up refused when they exist but no key can open them."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from perpetuo.auth.credential_crypto import Keyring, new_key_spec
from perpetuo.control import credentials
from perpetuo.control.actor import CLI_ACTOR
from perpetuo.control.bootstrap import StartupError, prepare_store
from perpetuo.schema.errors import GatewayError
from perpetuo.store.schema import audit_log, provider_credentials
from tests.support.plane import make_plane

SECRET_VALUE = "sk-live-abcdefghijklmnop-WXYZ"


def spec(**overrides):
    fields = {"name": "openai prod", "provider_type": "openai", "api_key": SECRET_VALUE}
    return credentials.CredentialCreate.model_validate(fields | overrides)


async def test_create_masks_and_encrypts(store_url):
    plane = await make_plane(store_url)
    try:
        view = await credentials.create_credential(plane, CLI_ACTOR, "ws_default", spec())
        assert view["last4"] == "WXYZ" and "api_key" not in view
        assert SECRET_VALUE not in str(view)
        async with plane.db.connect() as conn:
            row = (await conn.execute(select(provider_credentials))).one()
            audit_rows = (await conn.execute(select(audit_log))).all()
        assert SECRET_VALUE.encode() not in row.ciphertext
        assert credentials.reveal(plane.keyring, row) == SECRET_VALUE
        assert SECRET_VALUE not in str([tuple(r) for r in audit_rows])
    finally:
        await plane.db.dispose()


async def test_unknown_provider_type_is_a_field_error():
    with pytest.raises(ValueError, match="unknown provider type"):
        spec(provider_type="nosuch")


async def test_rotation_reencrypts_everything(store_url, monkeypatch):
    old = new_key_spec("k1")
    plane = await make_plane(store_url, Keyring.parse(old))
    try:
        for i in range(3):
            await credentials.create_credential(plane, CLI_ACTOR, "ws_default", spec(name=f"c{i}"))
        new = new_key_spec("k2")
        plane.keyring = Keyring.parse(f"{new},{old}")
        assert await credentials.reencrypt_all(plane) == (3, 0)
        assert await credentials.reencrypt_all(plane) == (0, 3)
        async with plane.db.connect() as conn:
            rows = (await conn.execute(select(provider_credentials))).all()
        assert {r.key_id for r in rows} == {"k2"}
        # The old key is no longer needed: a keyring with only k2 opens every row.
        assert {credentials.reveal(Keyring.parse(new), r) for r in rows} == {SECRET_VALUE}
    finally:
        await plane.db.dispose()


async def test_startup_refused_with_credentials_and_no_key(store_url):
    plane = await make_plane(store_url)
    try:
        await credentials.create_credential(plane, CLI_ACTOR, "ws_default", spec())
        plane.keyring = None
        with pytest.raises(StartupError, match="PERPETUO_ENCRYPTION_KEYS"):
            await prepare_store(plane)
        with pytest.raises(GatewayError) as exc:
            await credentials.create_credential(plane, CLI_ACTOR, "ws_default", spec())
        assert exc.value.status == 503
    finally:
        await plane.db.dispose()
