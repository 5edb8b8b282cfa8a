"""Process settings from the environment (PERPETUO_*)."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr, field_validator
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
    request_log_batch_size: int = Field(
        default=2000, ge=1, description="Request-log rows written per transaction, at most"
    )
    request_log_flush_interval: float = Field(
        default=0.5, gt=0, description="Seconds a partial batch of request-log rows waits"
    )
    request_log_queue_max_bytes: int = Field(
        default=64 * 1024 * 1024,
        ge=1024,
        description="Request-log records kept in memory while the database is behind; past "
        "this, the oldest go to the spill directory",
    )
    request_log_queue_max_age: float = Field(
        default=30.0, gt=0, description="Seconds a request-log record may wait in memory"
    )
    request_log_spill_max_bytes: int = Field(
        default=2 * 1024**3,
        ge=1024,
        description="Cap of the spill directory (records the database could not take yet); "
        "at the cap the gateway reports not ready and records that fit nowhere are dropped "
        "(counted and logged)",
    )
    request_log_spill_max_age: float = Field(
        default=24 * 3600.0,
        gt=0,
        description="A spilled record older than this (seconds) makes the gateway not ready",
    )
    request_log_degraded_after: float = Field(
        default=30.0,
        gt=0,
        description="Writer lag (seconds) past which readiness shows the request log degraded",
    )
    access_log_max_per_second: float = Field(
        default=100.0,
        ge=0,
        description="Successful requests written to the access log per second, at most (the "
        "rest are counted in a summary line each minute); errors are always written; 0: all",
    )
    access_log_routes: str = Field(
        default="",
        description='Per-route access log: a sampling rate or off, e.g. "chat=0.1,models=off"',
    )
    access_log_buffer_bytes: int = Field(
        default=8 * 1024 * 1024,
        ge=1024,
        description="Access-log lines waiting for stderr; past this the oldest are dropped",
    )
    host: str = "127.0.0.1"
    port: int = 8080
    log_level: str = "info"

    @field_validator("access_log_routes")
    @classmethod
    def _check_access_routes(cls, value: str) -> str:
        parse_access_routes(value)
        return value

    def access_routes(self) -> dict[str, float]:
        return parse_access_routes(self.access_log_routes)

    def resolved_database_url(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite+aiosqlite:///{(self.data_dir / 'perpetuo.db').resolve()}"


def parse_access_routes(text: str) -> dict[str, float]:
    """ "chat=0.1,models=off" -> {"chat": 0.1, "models": 0.0}: each route's sampling rate."""
    routes: dict[str, float] = {}
    for item in filter(None, (part.strip() for part in text.split(","))):
        route, _, value = item.partition("=")
        value = value.strip().lower()
        try:
            rate = 0.0 if value == "off" else 1.0 if value == "on" else float(value)
        except ValueError:
            rate = -1.0
        if not route.strip() or not 0.0 <= rate <= 1.0:
            raise ValueError(f"{item!r}: expected route=rate (0 to 1), route=on or route=off")
        routes[route.strip()] = rate
    return routes
