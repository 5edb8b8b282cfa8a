"""Where alerts go: a signed JSON webhook, a Slack incoming webhook, or e-mail.

URLs and signing secrets are sealed with the credential keyring (they are credentials: a
Slack webhook URL lets anyone post to the channel) and only a display form is ever shown:
the URL's host. A webhook's signing secret is shown once, when the channel is created.
"""

from __future__ import annotations

import json
import secrets
from typing import Annotated, Any, Literal
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator

from perpetuo.auth.credential_crypto import Keyring, Sealed
from perpetuo.store.timeutil import iso
from perpetuo.transport.url import URL

KINDS = ("webhook", "slack", "email")
PLATFORM_SCOPE = "platform"  # sealed secrets of platform channels are bound to this name
Address = Annotated[str, Field(min_length=3, max_length=320, pattern=r"^[^@\s]+@[^@\s]+$")]


def _url(value: SecretStr | None) -> SecretStr | None:
    if value is None:
        return None
    try:
        URL.parse(value.get_secret_value().strip())
    except ValueError as exc:
        raise ValueError(str(exc)) from None
    return SecretStr(value.get_secret_value().strip())


class ChannelCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: Annotated[str, Field(min_length=1, max_length=200)]
    kind: Literal["webhook", "slack", "email"]
    url: (
        Annotated[SecretStr, Field(description="webhook and slack: where to POST; secret")] | None
    ) = None
    signing_secret: (
        Annotated[SecretStr, Field(description="webhook: HMAC key; default: generated, shown once")]
        | None
    ) = None
    to: list[Address] | None = Field(
        default=None,
        description="email: members' addresses; default: the workspace's owners and admins "
        "(platform channels: the platform administrators)",
        max_length=50,
    )
    enabled: bool = True

    _check_url = field_validator("url")(_url)

    @field_validator("signing_secret")
    @classmethod
    def _long_enough(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None and len(value.get_secret_value()) < 16:
            raise ValueError("must be at least 16 characters")
        return value


class ChannelUpdate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: Annotated[str, Field(min_length=1, max_length=200)] | None = None
    url: SecretStr | None = None
    to: list[Address] | None = Field(default=None, max_length=50)
    enabled: bool | None = None

    _check_url = field_validator("url")(_url)


def new_signing_secret() -> str:
    return "whsec_" + secrets.token_urlsafe(32)


def display_of(url: str) -> str:
    """What people see of a URL: scheme and host (the path often is the secret)."""
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.hostname or '?'}/…"


def seal(
    keyring: Keyring, secret: dict[str, str], workspace_id: str | None, channel_id: str
) -> Sealed:
    return keyring.seal(json.dumps(secret), workspace_id or PLATFORM_SCOPE, channel_id)


def reveal(keyring: Keyring, row: Any) -> dict[str, str]:
    """The sealed part of a channel (url, signing_secret), in memory only."""
    if row.ciphertext is None:
        return {}
    plain = keyring.open(
        Sealed(row.ciphertext, row.nonce, row.key_id), row.workspace_id or PLATFORM_SCOPE, row.id
    )
    return json.loads(plain)


def channel_view(row: Any) -> dict[str, Any]:
    settings = row.settings or {}
    return {
        "id": row.id,
        "object": "alert_channel",
        "workspace_id": row.workspace_id,
        "name": row.name,
        "kind": row.kind,
        "display": row.display,
        "to": settings.get("to"),
        "signed": row.kind == "webhook",
        "enabled": bool(row.enabled),
        "created_at": iso(row.created_at),
        "updated_at": iso(row.updated_at),
    }
