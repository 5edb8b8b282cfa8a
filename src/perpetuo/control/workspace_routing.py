"""What the data plane needs to know about a workspace: its own aliases (built from its
stored models and decrypted credentials) and its settings.

One state per workspace is kept in memory, loaded on first use and dropped when the
workspace's models, credentials or settings change (here or on another instance).
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import select, update

from perpetuo.auth.credential_crypto import CredentialCryptoError, Keyring, Sealed
from perpetuo.config.loader import ConfigError
from perpetuo.config.model import (
    DeploymentConfig,
    GatewayConfig,
    ModelAliasConfig,
    ProviderConfig,
    UpstreamLimitsConfig,
)
from perpetuo.limits.plans import WorkspaceLimits
from perpetuo.routing.table import Alias, RoutingTable
from perpetuo.singleflight import SingleFlight
from perpetuo.store.aio import AsyncConnection
from perpetuo.store.database import Database
from perpetuo.store.schema import provider_credentials, workspace_models, workspaces
from perpetuo.store.timeutil import utcnow
from perpetuo.transport.egress import EgressPolicy

log = logging.getLogger("perpetuo.workspaces")


async def touch_routing(conn: AsyncConnection, workspace_id: str) -> None:
    """Mark the workspace's routing as changed (other instances poll updated_at)."""
    await conn.execute(
        update(workspaces)
        .where(workspaces.c.id == workspace_id)
        .values(routing_version=workspaces.c.routing_version + 1, updated_at=utcnow())
    )


@dataclass
class WorkspaceState:
    aliases: dict[str, Alias] = field(default_factory=dict)
    disabled: dict[str, str] = field(default_factory=dict)  # alias -> why it cannot serve
    settings: dict[str, Any] = field(default_factory=dict)  # as stored: only what was set
    limits: WorkspaceLimits = field(default_factory=WorkspaceLimits)  # from the settings
    cache: Any = None  # CachePolicy from the settings; None: not set
    guardrails: Any = None  # GuardrailPolicy from the settings; None: not set


EMPTY = WorkspaceState()


def build_table(
    models: list[Any],
    credentials: dict[str, Any],
    keyring: Keyring | None,
    egress: EgressPolicy | None = None,
    upstream_limits: UpstreamLimitsConfig | None = None,
) -> WorkspaceState:
    """Aliases from stored specs; deployments whose credential is gone are left out, and an
    alias left with none is listed as disabled with the reason."""
    table = WorkspaceState()
    providers: dict[str, ProviderConfig] = {}
    for cred_id, row in credentials.items():
        if keyring is None:
            continue
        try:
            secret = keyring.open(
                Sealed(row.ciphertext, row.nonce, row.key_id), row.workspace_id, cred_id
            )
        except CredentialCryptoError as exc:
            log.error(
                "credential %s of workspace %s cannot be decrypted: %s",
                cred_id,
                row.workspace_id,
                exc,
            )
            continue
        providers[cred_id] = ProviderConfig(
            type=row.provider_type,
            api_base=row.api_base,
            api_key=secret,
            api_version=row.api_version,
        )
    specs: dict[str, ModelAliasConfig] = {}
    for model in models:
        spec = dict(model.spec)
        deployments = []
        missing = []
        for dep in spec.get("deployments", []):
            cred = dep.get("credential_id")
            if cred in providers:
                fields = {k: v for k, v in dep.items() if k != "credential_id"}
                deployments.append(DeploymentConfig(provider=cred, **fields))
            else:
                missing.append(cred)
        if not deployments:
            table.disabled[model.alias] = (
                "its provider credential was deleted" if missing else "it has no deployments"
            )
            continue
        spec["deployments"] = deployments
        spec["fallbacks"] = [f for f in spec.get("fallbacks", []) if f in {m.alias for m in models}]
        specs[model.alias] = ModelAliasConfig.model_validate(spec)
    for alias in list(specs):
        # A fallback to a disabled alias is dropped rather than failing the whole table.
        specs[alias] = specs[alias].model_copy(
            update={"fallbacks": [f for f in specs[alias].fallbacks if f in specs]}
        )
    try:
        config = GatewayConfig(providers=providers, models=specs)
        if upstream_limits is not None:  # the operator's caps hold for tenants' endpoints too
            config = config.model_copy(update={"upstream_limits": upstream_limits})
        # A tenant's endpoints: every connection passes the egress policy.
        built = RoutingTable.build(config, "workspace", egress=egress or EgressPolicy())
    except (ConfigError, ValueError) as exc:
        log.error("workspace routing could not be built: %s", exc)
        return table
    table.aliases = built.aliases
    return table


async def load_table(
    db: Database,
    keyring: Keyring | None,
    workspace_id: str,
    egress: EgressPolicy | None = None,
    upstream_limits: UpstreamLimitsConfig | None = None,
) -> WorkspaceState:
    async with db.connect() as conn:
        settings = await conn.scalar(
            select(workspaces.c.settings).where(workspaces.c.id == workspace_id)
        )
        models = (
            await conn.execute(
                select(workspace_models).where(workspace_models.c.workspace_id == workspace_id)
            )
        ).all()
        if not models:
            return _with_settings(WorkspaceState(), settings)
        creds = (
            await conn.execute(
                select(provider_credentials).where(
                    provider_credentials.c.workspace_id == workspace_id
                )
            )
        ).all()
    return _with_settings(
        build_table(list(models), {row.id: row for row in creds}, keyring, egress, upstream_limits),
        settings,
    )


def _with_settings(state: WorkspaceState, stored: dict[str, Any] | None) -> WorkspaceState:
    from perpetuo.control.workspaces import effective_settings  # (it imports this module)

    state.settings = dict(stored or {})
    effective = effective_settings(stored)
    state.limits = WorkspaceLimits.from_settings(effective)
    state.cache, state.guardrails = effective.cache, effective.guardrails
    return state


class WorkspaceRoutes:
    """Per-workspace tables in memory; a table is reloaded after invalidation or `ttl`."""

    def __init__(
        self,
        db: Database,
        keyring: Keyring | None,
        ttl: float = 300.0,
        egress: EgressPolicy | None = None,
    ) -> None:
        self._db = db
        self._keyring = keyring
        self.egress = egress or EgressPolicy()
        self.upstream_limits: UpstreamLimitsConfig | None = None  # the operator's caps
        self._ttl = ttl
        self._tables: dict[str, tuple[WorkspaceState, float]] = {}
        self._flight: SingleFlight[WorkspaceState] = SingleFlight()

    async def get(self, workspace_id: str) -> WorkspaceState:
        cached = self._tables.get(workspace_id)
        if cached is not None and cached[1] > time.monotonic():
            return cached[0]
        return await self._flight.run(workspace_id, lambda: self._load(workspace_id))

    async def _load(self, workspace_id: str) -> WorkspaceState:
        table = await load_table(
            self._db, self._keyring, workspace_id, self.egress, self.upstream_limits
        )
        self._tables[workspace_id] = (table, time.monotonic() + self._ttl)
        return table

    def peek(self, workspace_id: str) -> WorkspaceState:
        """The cached state without loading (EMPTY when not loaded)."""
        cached = self._tables.get(workspace_id)
        return cached[0] if cached is not None else EMPTY

    def invalidate(self, workspace_id: str) -> None:
        self._tables.pop(workspace_id, None)

    def set_policies(self, egress: EgressPolicy, upstream_limits: UpstreamLimitsConfig) -> None:
        """The operator's egress policy and upstream caps (at start and on reload): every
        table is rebuilt under them on next use when they changed."""
        if egress != self.egress or upstream_limits != self.upstream_limits:
            self.egress, self.upstream_limits = egress, upstream_limits
            self._tables.clear()
