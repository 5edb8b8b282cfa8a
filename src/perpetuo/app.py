"""Wiring: settings and config in, a ready ASGI application out."""

from __future__ import annotations

from perpetuo.api.asgi import GatewayApp
from perpetuo.auth.authenticator import Authenticator
from perpetuo.auth.master_key import read_master_key
from perpetuo.config import GatewayConfig, Settings, load_config
from perpetuo.pipeline.runtime import Gateway
from perpetuo.routing.router import Router
from perpetuo.routing.table import RoutingTable
from perpetuo.transport.client import HTTPClient


def build_gateway(settings: Settings, config: GatewayConfig) -> Gateway:
    source = str(settings.config) if settings.config else "config"
    table = RoutingTable.build(config, source)
    client = HTTPClient()
    master = settings.master_key.get_secret_value() if settings.master_key else None
    if master is None:
        master = read_master_key(settings.data_dir)
    return Gateway(
        config=config,
        table=table,
        client=client,
        router=Router(
            client, config.routing, expose_upstream_errors=config.server.expose_upstream_errors
        ),
        authenticator=Authenticator(master),
    )


def create_app(settings: Settings | None = None, config: GatewayConfig | None = None) -> GatewayApp:
    """The application; uvicorn calls this (as a factory) in every worker process."""
    settings = settings or Settings()
    if config is None:
        config = load_config(settings.config)
    return GatewayApp(build_gateway(settings, config))
