"""Process settings from the environment (PERPETUO_*)."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="PERPETUO_", extra="ignore")

    config: Path | None = Field(default=None, description="Path of the YAML config file.")
    master_key: SecretStr | None = Field(
        default=None, description="Bearer token accepted on every endpoint (bootstrap/admin)."
    )
    data_dir: Path = Field(default=Path(".perpetuo"), description="Local state directory.")
    database_url: str | None = Field(
        default=None, description="SQLAlchemy URL; default: SQLite file in the data directory."
    )
    secret_key: SecretStr | None = Field(
        default=None,
        description="Server secret for key hashing and session tokens; default: generated "
        "into the data directory (set it explicitly when running several instances)",
    )
    redis_url: str | None = Field(
        default=None, description="Redis for cross-instance state (invalidation, limits)"
    )
    signup: Literal["open", "invite", "closed"] = Field(
        default="invite",
        description="Who may create an account: anyone, holders of an invitation, or nobody "
        "(administrators create accounts). The first account is always allowed and becomes "
        "the platform administrator.",
    )
    limits_backend: Literal["auto", "memory", "redis"] = Field(
        default="auto",
        description="Where rate limits, quotas, budgets and credits are counted: in this "
        "process, or in Redis (shared by every instance); auto: Redis when redis_url is set",
    )
    limits_redis_failure: Literal["open", "closed"] = Field(
        default="open",
        description="When Redis cannot be reached: open checks limits per instance in memory "
        "(and counts the failure); closed refuses requests with 503 limits_unavailable",
    )
    metrics_enabled: bool = Field(default=True, description="Serve Prometheus metrics at /metrics")
    metrics_token: SecretStr | None = Field(
        default=None, description="Bearer token /metrics requires (none: open, like /health)"
    )
    otlp_endpoint: str | None = Field(
        default=None,
        description="OTLP/HTTP collector (http://host:4318): traces are off unless set",
    )
    log_format: Literal["json", "text"] = Field(default="json", description="Log line format")
    log_levels: str = Field(
        default="", description='Per-logger levels, e.g. "perpetuo.routing=debug,uvicorn=warning"'
    )
    trusted_proxies: str = Field(
        default="127.0.0.1",
        description="Peers (addresses or CIDRs, comma-separated, or *) whose X-Forwarded-For "
        "gives the client address, for IP allowlists, throttling and logs",
    )
    host: str = "127.0.0.1"
    port: int = 8080
    log_level: str = "info"

    def resolved_database_url(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite+aiosqlite:///{(self.data_dir / 'perpetuo.db').resolve()}"
