"""Wiring: settings and config in, a ready ASGI application out."""

from __future__ import annotations

import os

from perpetuo.api.asgi import GatewayApp
from perpetuo.api.cors import CorsPolicy
from perpetuo.api.http import TrustedProxies
from perpetuo.auth.authenticator import Authenticator
from perpetuo.auth.credential_crypto import Keyring
from perpetuo.auth.key_cache import KeyCache, KeyRecord
from perpetuo.auth.key_throttle import InvalidKeyThrottle
from perpetuo.auth.master_key import read_master_key
from perpetuo.auth.secrets import DerivedKeys, load_server_secret
from perpetuo.auth.throttle import login_throttle
from perpetuo.cache.service import ResponseCache, build_response_cache
from perpetuo.config import GatewayConfig, Settings, load_config
from perpetuo.control.alerts.delivery import DeliveryPolicy
from perpetuo.control.alerts.service import AlertService
from perpetuo.control.billing import build_billing
from perpetuo.control.changes import (
    CACHE_PURGED,
    KEY,
    WORKSPACE,
    WORKSPACE_DELETED,
    ChangeFeed,
)
from perpetuo.control.chat_sessions import ChatSessionStore
from perpetuo.control.cors_origins import workspace_origins
from perpetuo.control.mail import Mailer
from perpetuo.control.mail.config import base_url_of, mail_config
from perpetuo.control.outbound import policy_for
from perpetuo.control.plane import ControlPlane, TokenPolicy
from perpetuo.control.sso.directory import SsoDirectory
from perpetuo.control.stored_responses import ResponseStore
from perpetuo.control.workspace_routing import WorkspaceRoutes
from perpetuo.limits import build_limit_engine
from perpetuo.metering.journal import JournalPolicy
from perpetuo.metering.writer import Bounds, UsageWriter
from perpetuo.observability import logs
from perpetuo.observability.metrics import GatewayMetrics
from perpetuo.observability.tracing import Tracing
from perpetuo.pipeline.runtime import Gateway
from perpetuo.routing.router import Router
from perpetuo.routing.table import RoutingTable
from perpetuo.store.database import Database
from perpetuo.store.repos import api_keys as key_rows
from perpetuo.transport.client import HTTPClient
from perpetuo.transport.proxy import ProxyEnvironment


def build_control_plane(settings: Settings) -> ControlPlane:
    db = Database(settings.resolved_database_url())
    secret = load_server_secret(
        settings.secret_key.get_secret_value() if settings.secret_key else None,
        settings.data_dir,
        create=True,
    )
    keys = DerivedKeys.from_secret(secret)
    return ControlPlane(
        db=db,
        keys=keys,
        changes=ChangeFeed(db, settings.redis_url),
        keyring=Keyring.from_environment(),
        throttle=login_throttle(settings.redis_url),
        signup_policy=settings.signup,
        mail=Mailer(mail_config(settings), keys.jwt_signing),
        require_email_verification=settings.require_email_verification,
        tokens=TokenPolicy(
            access_ttl=settings.access_token_ttl, refresh_ttl=settings.refresh_token_ttl
        ),
        sso=SsoDirectory(base_url=base_url_of(settings)),
    )


def key_loader(db: Database):
    async def load(key_hash: str) -> KeyRecord | None:
        async with db.connect() as conn:
            row = await key_rows.find_by_hash(conn, key_hash)
        return KeyRecord.from_row(row, key_hash) if row is not None else None

    return load


def key_batch_loader(db: Database):
    async def load(hashes: list[str]) -> dict[str, KeyRecord]:
        async with db.connect() as conn:
            rows = await key_rows.find_by_hashes(conn, hashes)
        wanted, found = set(hashes), {}
        for row in rows:
            for matched in (row.key_hash, row.previous_hash):
                if matched in wanted:
                    found[matched] = KeyRecord.from_row(row, matched)
        return found

    return load


def build_gateway(settings: Settings, config: GatewayConfig) -> Gateway:
    source = str(settings.config) if settings.config else "config"
    table = RoutingTable.build(config, source)
    client = HTTPClient(
        max_buffered_bytes=config.upstream_limits.max_buffered_bytes,
        proxies=ProxyEnvironment.from_environ(os.environ),  # HTTPS_PROXY, NO_PROXY, ...
    )
    master = settings.master_key.get_secret_value() if settings.master_key else None
    if master is None:
        master = read_master_key(settings.data_dir)
    plane = build_control_plane(settings)
    plane.egress = policy_for(config.egress, settings.host, settings.port)
    plane.sso.http = client
    plane.sso.configure(config.sso)
    plane.api_keys = config.api_keys
    plane.currency = config.currency
    keys = KeyCache(key_loader(plane.db), batch_loader=key_batch_loader(plane.db))
    plane.changes.subscribe(KEY, keys.invalidate_key)
    workspace_routes = WorkspaceRoutes(plane.db, plane.keyring)
    workspace_routes.set_policies(plane.egress, config.upstream_limits)
    limits = build_limit_engine(settings, plane.db)
    alerts = AlertService(
        plane,
        client,
        interval=settings.alert_interval,
        policy=DeliveryPolicy(settings.alert_max_attempts, settings.alert_retry_seconds),
    )
    limits.alerts.listeners.append(alerts.budget_listener)
    plane.credit_listener = limits.credits_granted
    plane.billing = build_billing(config.billing, settings, plane)
    if plane.billing is not None and limits.ledger is not None:
        plane.billing.pending_usage = limits.ledger.pending
    plane.changes.subscribe(WORKSPACE, workspace_routes.invalidate)
    plane.changes.subscribe(WORKSPACE_DELETED, workspace_routes.invalidate)
    plane.changes.subscribe(WORKSPACE_DELETED, keys.invalidate_workspace)
    cache = build_response_cache(config.cache, settings.redis_url, plane.db)
    subscribe_cache(plane, cache)
    return Gateway(
        config=config,
        table=table,
        client=client,
        router=Router(
            client,
            table,
            config.routing,
            expose_upstream_errors=config.server.expose_upstream_errors,
        ),
        authenticator=Authenticator(
            master, hmac_key=plane.keys.api_key_hmac, keys=keys, throttle=key_throttle(settings)
        ),
        plane=plane,
        keys=keys,
        workspace_routes=workspace_routes,
        usage=request_log_writer(settings, plane.db),
        tracing=Tracing(settings.otlp_endpoint),
        limits=limits,
        cache=cache,
        responses=ResponseStore(plane.db),
        chat_sessions=ChatSessionStore(plane.db),
        metrics=GatewayMetrics(set(table.aliases), set(config.providers))
        if settings.metrics_enabled
        else None,
        metrics_token=settings.metrics_token.get_secret_value() if settings.metrics_token else None,
        config_path=settings.config,
        master_key=master,
        listen=(settings.host, settings.port),
        alerts=alerts,
    )


def key_throttle(settings: Settings) -> InvalidKeyThrottle | None:
    """Bad keys per address and minute, counted in Redis when there is one; None: no limit."""
    if not settings.invalid_key_limit:
        return None
    return InvalidKeyThrottle(settings.invalid_key_limit, settings.redis_url)


def cors_policy(settings: Settings, gateway: Gateway) -> CorsPolicy:
    """The server's origins, and each workspace's (re-read when a workspace changes)."""
    db = gateway.plane.db
    policy = CorsPolicy(
        settings.cors_origins,
        allow_credentials=settings.cors_allow_credentials,
        max_age=settings.cors_max_age,
        workspace_origins=lambda: workspace_origins(db),
    )
    gateway.plane.changes.subscribe(WORKSPACE, policy.stale)
    gateway.plane.changes.subscribe(WORKSPACE_DELETED, policy.stale)
    return policy


def request_log_writer(settings: Settings, db: Database) -> UsageWriter:
    bounds = Bounds(
        queue_max_bytes=settings.request_log_queue_max_bytes,
        queue_max_age=settings.request_log_queue_max_age,
        spill_max_bytes=settings.request_log_spill_max_bytes,
        spill_max_age=settings.request_log_spill_max_age,
        degraded_after=settings.request_log_degraded_after,
    )
    return UsageWriter(
        db,
        settings.data_dir / "spill",
        batch_size=settings.request_log_batch_size,
        flush_interval=settings.request_log_flush_interval,
        bounds=bounds,
        journal_dir=settings.data_dir / "journal" if settings.request_log_journal else None,
        journal=JournalPolicy(
            interval=settings.request_log_journal_interval_ms / 1000,
            fsync=settings.request_log_journal_fsync,
        ),
    )


def subscribe_cache(plane: ControlPlane, cache: ResponseCache) -> None:
    """Purges and deleted workspaces, here or on another instance, empty this one's copies."""

    def purged(ident: str) -> None:
        workspace_id, _, alias = ident.partition("/")
        cache.forget(workspace_id, alias or None)

    plane.changes.subscribe(CACHE_PURGED, purged)
    plane.changes.subscribe(
        WORKSPACE_DELETED, lambda workspace_id: cache.forget(workspace_id, None)
    )


def create_app(settings: Settings | None = None, config: GatewayConfig | None = None) -> GatewayApp:
    """The application; uvicorn calls this (as a factory) in every worker process."""
    settings = settings or Settings()
    logs.configure(
        settings.log_level,
        settings.log_format,
        settings.log_levels,
        access=logs.AccessPolicy.from_settings(settings),
    )
    if config is None:
        config = load_config(settings.config)
    gateway = build_gateway(settings, config)
    proxies = TrustedProxies(settings.trusted_proxies)
    return GatewayApp(gateway, proxies, cors=cors_policy(settings, gateway))
