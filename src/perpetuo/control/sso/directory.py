"""Where sign-in providers are found: the operator's, from the config file (kept in memory,
replaced on reload), and workspaces', read from the store at each use (sign-ins are rare,
and a provider switched off must stop at once on every instance).
"""

from __future__ import annotations

import functools
import logging
from typing import TYPE_CHECKING, Any

from sqlalchemy import select

from perpetuo.auth.credential_crypto import CredentialCryptoError, Sealed
from perpetuo.config.sso import SsoConfig
from perpetuo.control.errors import unavailable
from perpetuo.control.sso.spec import WORKSPACE_PREFIX, ProviderSpec, from_config, from_row
from perpetuo.store.sso_tables import sso_domains, sso_providers
from perpetuo.transport.client import HTTPClient

if TYPE_CHECKING:
    from perpetuo.control.plane import ControlPlane
    from perpetuo.control.sso.oidc import Metadata, ProviderCache

log = logging.getLogger("perpetuo.sso")


def seal_id(workspace_id: str, provider_id: str) -> tuple[str, str]:
    """What a provider's secret is sealed to (the keyring's associated data): its workspace and
    id, under a name of its own so a provider credential's ciphertext never opens here."""
    return workspace_id, f"sso:{provider_id}"


class SsoDirectory:
    def __init__(self, http: HTTPClient | None = None, base_url: str = "") -> None:
        self.http = http  # set when the gateway is built; no sign-in happens before
        self.base_url = base_url.rstrip("/")  # redirect URIs start with it
        self.platform: dict[str, ProviderSpec] = {}

    @functools.cached_property
    def cache(self) -> ProviderCache:
        # The token libraries (joserfc, authlib, cryptography) load with the first sign-in.
        from perpetuo.control.sso.oidc import ProviderCache

        return ProviderCache()

    def configure(self, config: SsoConfig) -> None:
        self.platform = {name: from_config(name, spec) for name, spec in config.providers.items()}

    def buttons(self) -> list[ProviderSpec]:
        return [spec for spec in self.platform.values() if spec.button]

    def client(self) -> HTTPClient:
        if self.http is None:
            raise unavailable("Single sign-on is not set up on this server.", "sso_unavailable")
        return self.http

    async def metadata(self, spec: ProviderSpec) -> Metadata:
        return await self.cache.metadata(self.client(), spec)

    async def find(
        self, plane: ControlPlane, key: str, *, disabled: bool = False
    ) -> ProviderSpec | None:
        """The provider answering to `key`, if it exists and is switched on (or `disabled`)."""
        if not key.startswith(f"{WORKSPACE_PREFIX}_"):
            return self.platform.get(key)
        async with plane.db.connect() as conn:
            row = (
                await conn.execute(select(sso_providers).where(sso_providers.c.id == key))
            ).first()
            if row is None or not (row.enabled or disabled):
                return None
            verified = await verified_domains(conn, row.workspace_id)
        return self._spec(plane, row, verified)

    async def for_email(self, plane: ControlPlane, email: str) -> ProviderSpec | None:
        """The provider that signs in this address: its workspace's, when a platform
        administrator verified its domain for a workspace, else an operator's listing it."""
        domain = email.rpartition("@")[2].strip().lower()
        if not domain:
            return None
        async with plane.db.connect() as conn:
            owner = await conn.scalar(
                select(sso_domains.c.workspace_id).where(sso_domains.c.domain == domain)
            )
            rows = []
            if owner is not None:
                rows = (
                    await conn.execute(
                        select(sso_providers)
                        .where(sso_providers.c.workspace_id == owner, sso_providers.c.enabled)
                        .order_by(sso_providers.c.created_at, sso_providers.c.id)
                    )
                ).all()
        for row in rows:
            if domain in row.domains:
                return self._spec(plane, row, {domain})
        return next((s for s in self.platform.values() if domain in s.domains), None)

    async def required_for(self, plane: ControlPlane, email: str) -> ProviderSpec | None:
        """The provider this address must sign in with (no password), if any."""
        spec = await self.for_email(plane, email)
        if spec is not None and spec.sso_required:
            return spec
        domain = email.rpartition("@")[2].strip().lower()
        return next(
            (s for s in self.platform.values() if s.sso_required and domain in s.domains), None
        )

    def _spec(self, plane: ControlPlane, row: Any, verified: set[str]) -> ProviderSpec:
        if plane.keyring is None:
            raise unavailable(
                "This sign-in provider's secret cannot be read: the server has no encryption key.",
                "encryption_not_configured",
            )
        try:
            secret = plane.keyring.open(
                Sealed(row.ciphertext, row.nonce, row.key_id), *seal_id(row.workspace_id, row.id)
            )
        except CredentialCryptoError as exc:
            log.error("SSO provider %s: the client secret cannot be opened: %s", row.id, exc)
            raise unavailable(
                "This sign-in provider's secret cannot be read; ask an administrator.",
                "sso_secret_unreadable",
            ) from None
        return from_row(row, secret, verified, plane.egress)


async def verified_domains(conn: Any, workspace_id: str) -> set[str]:
    rows = await conn.execute(
        select(sso_domains.c.domain).where(sso_domains.c.workspace_id == workspace_id)
    )
    return set(rows.scalars().all())
