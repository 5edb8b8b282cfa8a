"""Provider credentials a workspace brings (BYOK): encrypted at rest, never shown again.

Only the provider, name, endpoint and last four characters are ever returned. Deleting a
credential takes the workspace deployments that use it out of service, with a clear error.
"""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator
from sqlalchemy import delete, insert, select

from perpetuo.auth.credential_crypto import CredentialCryptoError, Keyring, Sealed
from perpetuo.control import audit
from perpetuo.control.access import require
from perpetuo.control.actor import Actor
from perpetuo.control.errors import invalid, not_found, unavailable
from perpetuo.control.outbound import check_tenant_url
from perpetuo.control.plane import ControlPlane
from perpetuo.control.workspace_routing import touch_routing
from perpetuo.store.ids import new_id
from perpetuo.store.pagination import Page, newest_first, to_page
from perpetuo.store.schema import provider_credentials
from perpetuo.store.timeutil import iso, utcnow
from perpetuo.transport.url import URL


def provider_types() -> list[str]:
    from perpetuo.providers.registry import ADAPTERS

    return sorted(ADAPTERS)


class CredentialCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: Annotated[str, Field(min_length=1, max_length=200)]
    provider_type: str = Field(description="openai, azure, anthropic, gemini or a preset")
    api_key: Annotated[SecretStr, Field(description="The provider key; stored encrypted")]
    api_base: Annotated[str, Field(max_length=500)] | None = None
    api_version: Annotated[str, Field(max_length=40)] | None = None

    @field_validator("provider_type")
    @classmethod
    def _known_type(cls, value: str) -> str:
        known = provider_types()
        if value not in known:
            raise ValueError(f"unknown provider type (known: {', '.join(known)})")
        return value

    @field_validator("api_key")
    @classmethod
    def _not_blank(cls, value: SecretStr) -> SecretStr:
        if not value.get_secret_value().strip():
            raise ValueError("must not be empty")
        return value

    @field_validator("api_base")
    @classmethod
    def _url(cls, value: str | None) -> str | None:
        if value is None:
            return None
        try:
            URL.parse(value)
        except ValueError as exc:
            raise ValueError(str(exc)) from None
        return value


def credential_view(row: Any) -> dict[str, Any]:
    return {
        "id": row.id,
        "object": "provider_credential",
        "workspace_id": row.workspace_id,
        "name": row.name,
        "provider_type": row.provider_type,
        "api_base": row.api_base,
        "api_version": row.api_version,
        "last4": row.last4,
        "display": f"…{row.last4}",
        "created_at": iso(row.created_at),
    }


def _keyring(plane: ControlPlane) -> Keyring:
    if plane.keyring is None:
        raise unavailable(
            "Credential storage is not configured on this server: the operator must set "
            "PERPETUO_ENCRYPTION_KEYS.",
            "encryption_not_configured",
        )
    return plane.keyring


def reveal(keyring: Keyring, row: Any) -> str:
    """The plaintext key, for building upstream calls in memory only."""
    return keyring.open(Sealed(row.ciphertext, row.nonce, row.key_id), row.workspace_id, row.id)


async def create_credential(
    plane: ControlPlane, actor: Actor, workspace_id: str, spec: CredentialCreate
) -> dict[str, Any]:
    keyring = _keyring(plane)
    check_tenant_url(plane, spec.api_base, "api_base")
    secret = spec.api_key.get_secret_value().strip()
    credential_id = new_id("cred")
    sealed = keyring.seal(secret, workspace_id, credential_id)
    async with plane.db.begin() as conn:
        await require(conn, actor, workspace_id, "credentials.write")
        await conn.execute(
            insert(provider_credentials).values(
                id=credential_id,
                workspace_id=workspace_id,
                name=spec.name,
                provider_type=spec.provider_type,
                api_base=spec.api_base,
                api_version=spec.api_version,
                ciphertext=sealed.ciphertext,
                nonce=sealed.nonce,
                key_id=sealed.key_id,
                last4=secret[-4:],
                created_by=actor.user_id,
                created_at=utcnow(),
            )
        )
        row = await _get(conn, workspace_id, credential_id)
        view = credential_view(row)
        await audit.record(
            conn,
            actor,
            "credential.create",
            workspace_id=workspace_id,
            target_type="provider_credential",
            target_id=credential_id,
            after=view,
        )
        await touch_routing(conn, workspace_id)
    await plane.changes.publish("workspace", workspace_id)
    return view


async def _get(conn: Any, workspace_id: str, credential_id: str) -> Any:
    return (
        await conn.execute(
            select(provider_credentials).where(
                provider_credentials.c.workspace_id == workspace_id,
                provider_credentials.c.id == credential_id,
            )
        )
    ).first()


async def list_credentials(
    plane: ControlPlane, actor: Actor, workspace_id: str, *, limit: int, cursor: str | None
) -> Page:
    async with plane.db.connect() as conn:
        await require(conn, actor, workspace_id, "credentials.read")
        query = newest_first(
            select(provider_credentials).where(provider_credentials.c.workspace_id == workspace_id),
            provider_credentials,
            cursor,
            limit,
        )
        return to_page((await conn.execute(query)).all(), limit)


async def get_credential(
    plane: ControlPlane, actor: Actor, workspace_id: str, credential_id: str
) -> dict[str, Any]:
    async with plane.db.connect() as conn:
        await require(conn, actor, workspace_id, "credentials.read")
        row = await _get(conn, workspace_id, credential_id)
    if row is None:
        raise not_found("Provider credential")
    return credential_view(row)


async def load_secret(
    plane: ControlPlane, actor: Actor, workspace_id: str, credential_id: str
) -> tuple[Any, str]:
    """The row and decrypted key, for the test-connection action (admins only)."""
    keyring = _keyring(plane)
    async with plane.db.connect() as conn:
        await require(conn, actor, workspace_id, "credentials.write")
        row = await _get(conn, workspace_id, credential_id)
    if row is None:
        raise not_found("Provider credential")
    try:
        return row, reveal(keyring, row)
    except CredentialCryptoError as exc:
        raise invalid(f"This credential cannot be decrypted: {exc}.") from None


async def delete_credential(
    plane: ControlPlane, actor: Actor, workspace_id: str, credential_id: str
) -> None:
    async with plane.db.begin() as conn:
        await require(conn, actor, workspace_id, "credentials.write")
        row = await _get(conn, workspace_id, credential_id)
        if row is None:
            raise not_found("Provider credential")
        await conn.execute(
            delete(provider_credentials).where(provider_credentials.c.id == credential_id)
        )
        await audit.record(
            conn,
            actor,
            "credential.delete",
            workspace_id=workspace_id,
            target_type="provider_credential",
            target_id=credential_id,
            before=credential_view(row),
        )
        await touch_routing(conn, workspace_id)
    await plane.changes.publish("workspace", workspace_id)


async def reencrypt_all(plane: ControlPlane) -> tuple[int, int]:
    """Re-seal every credential with the active key (`perpetuo secrets rotate`).
    Returns (re-encrypted, already current)."""
    from sqlalchemy import update

    keyring = _keyring(plane)
    done = current = 0
    async with plane.db.begin() as conn:
        rows = (await conn.execute(select(provider_credentials))).all()
        for row in rows:
            if row.key_id == keyring.active_id:
                current += 1
                continue
            plain = reveal(keyring, row)
            sealed = keyring.seal(plain, row.workspace_id, row.id)
            await conn.execute(
                update(provider_credentials)
                .where(provider_credentials.c.id == row.id)
                .values(ciphertext=sealed.ciphertext, nonce=sealed.nonce, key_id=sealed.key_id)
            )
            done += 1
    return done, current
