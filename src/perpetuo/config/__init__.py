"""Typed configuration: the YAML file (providers, aliases, server) and environment settings."""

from perpetuo.config.loader import ConfigError, load_config
from perpetuo.config.model import (
    DeploymentConfig,
    GatewayConfig,
    ModelAliasConfig,
    ProviderConfig,
    ServerConfig,
)
from perpetuo.config.settings import Settings

__all__ = [
    "ConfigError",
    "DeploymentConfig",
    "GatewayConfig",
    "ModelAliasConfig",
    "ProviderConfig",
    "ServerConfig",
    "Settings",
    "load_config",
]
