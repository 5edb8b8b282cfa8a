"""Process settings from the environment (PERPETUO_*)."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from perpetuo.config import urls


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
    limits_leases: bool = Field(
        default=True,
        description="With Redis: far from a limit, each instance admits requests against a "
        "small share of the counter held in Redis (a lease) instead of a round trip each; "
        "near a limit every request is checked in Redis. Off: every request is",
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
    # Not longer: a batch's writing competes with the event loop for the interpreter and the
    # CPU; 0.5 s batches put the JSON p99 at 3.3-3.7x the p50 under load, 0.2 s at 2.6-2.8x.
    request_log_flush_interval: float = Field(
        default=0.2, gt=0, description="Seconds a partial batch of request-log rows waits"
    )
    request_log_queue_max_bytes: int = Field(
        default=32 * 1024 * 1024,
        ge=1024,
        description="Memory for request-log records waiting while the database is behind "
        "(estimated from their encoded size); past this, the oldest go to the spill directory",
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
    request_log_journal: bool = Field(
        default=True,
        description="Append request-log records to a local journal within milliseconds of "
        "each answer, so that a hard kill (SIGKILL, OOM) loses only those milliseconds",
    )
    request_log_journal_interval_ms: float = Field(
        default=10.0,
        gt=0,
        le=1000,
        description="Milliseconds between the journal's batched appends (the bound on what a "
        "hard kill loses, plus the time its thread waits for the CPU)",
    )
    request_log_journal_fsync: Literal["never", "interval", "always"] = Field(
        default="never",
        description="never: the journal survives a killed process (the page cache does) but "
        "not a power loss or kernel crash; interval: fsync once a second; always: after every "
        "append",
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
    public_url: str | None = Field(
        default=None,
        description="The address people reach this server at (https://llm.example.com), "
        "for links in mail; default: http://host:port",
    )
    smtp_host: str | None = Field(
        default=None, description="SMTP server that sends mail; unset: no mail is sent"
    )
    smtp_port: int | None = Field(
        default=None, ge=1, le=65535, description="Default: 587 (starttls), 465 (tls), 25 (none)"
    )
    smtp_security: Literal["starttls", "tls", "none"] = Field(
        default="starttls",
        description="starttls: upgrade a plain connection (required, not opportunistic); "
        "tls: implicit TLS from the first byte; none: plain text (a local relay only)",
    )
    smtp_username: str | None = Field(default=None, description="SMTP AUTH user name")
    smtp_password: SecretStr | None = Field(default=None, description="SMTP AUTH password")
    smtp_timeout: float = Field(default=15.0, gt=0, description="Seconds per SMTP operation")
    smtp_ca_file: Path | None = Field(
        default=None, description="CA bundle for the SMTP server's certificate (a private CA)"
    )
    mail_from: str | None = Field(
        default=None, description='Sender of every mail, e.g. "Perpetuo <noreply@example.com>"'
    )
    mail_reply_to: str | None = Field(default=None, description="Reply-To of every mail")
    mail_product_name: str = Field(default="Perpetuo", description="The name mail signs with")
    mail_max_attempts: int = Field(
        default=10, ge=1, le=100, description="Delivery attempts before a mail is given up"
    )
    mail_retry_seconds: float = Field(
        default=30.0, gt=0, description="First retry delay; doubled per attempt, at most 1 hour"
    )
    mail_poll_interval: float = Field(
        default=5.0, gt=0, description="Seconds between looks at the outbox for due mail"
    )
    require_email_verification: bool = Field(
        default=False,
        description="People must confirm their address before creating workspaces or API keys "
        "(needs smtp_host)",
    )
    key_expiry_notice_days: int = Field(
        default=7,
        ge=0,
        le=365,
        description="Mail key owners this many days before a key expires; 0: never",
    )
    alert_interval: float = Field(
        default=60.0, ge=1, le=3600, description="Seconds between evaluations of alert rules"
    )
    alert_max_attempts: int = Field(
        default=8, ge=1, le=100, description="Delivery attempts before an alert is given up"
    )
    alert_retry_seconds: float = Field(
        default=10.0, gt=0, description="First alert retry delay; doubled per attempt, 1 h at most"
    )
    cors_origins: str = Field(
        default="",
        description="Browser origins (https://app.example.com, comma-separated, or *) allowed "
        "to call the data plane; workspaces may add their own",
    )
    cors_allow_credentials: bool = Field(
        default=False, description="Allow cookies and HTTP auth on CORS requests (not with *)"
    )
    cors_max_age: int = Field(
        default=600, ge=0, le=86400, description="Seconds browsers may cache a preflight answer"
    )
    invalid_key_limit: int = Field(
        default=0,
        ge=0,
        description="Requests with a missing or unknown API key one client address may make "
        "per minute before getting 429 without any key lookup; 0: no limit",
    )
    stripe_secret_key: SecretStr | None = Field(
        default=None, description="Stripe secret key (sk_live_... or sk_test_...) for billing"
    )
    stripe_webhook_secret: SecretStr | None = Field(
        default=None, description="Signing secret (whsec_...) of the Stripe webhook endpoint"
    )
    stripe_webhook_tolerance: int = Field(
        default=300, ge=10, le=3600, description="Seconds a webhook's signature stays valid"
    )
    stripe_api_base: str | None = Field(
        default=None, description="Another Stripe API address (a local fake in tests)"
    )
    billing_interval: float = Field(
        default=30.0,
        gt=0,
        description="Seconds between billing passes (automatic recharges, low-balance mail, "
        "trial ends and reminders, grace periods)",
    )
    access_token_ttl: int = Field(
        default=15 * 60,
        ge=60,
        le=24 * 3600,
        description="Seconds an admin API access token is valid (sign-out and revocation end "
        "it at once whatever this is)",
    )
    refresh_token_ttl: int = Field(
        default=30 * 24 * 3600,
        ge=300,
        le=365 * 24 * 3600,
        description="Seconds a sign-in session lasts from sign-in, whatever the refreshes "
        "(refresh tokens and the dashboard's cookie)",
    )
    host: str = "127.0.0.1"
    port: int = Field(default=8080, ge=0, le=65535)
    log_level: str = "info"

    @model_validator(mode="after")
    def _check_mail_and_cors(self) -> Settings:
        if self.smtp_host and not self.mail_from:
            raise ValueError("PERPETUO_MAIL_FROM is required when PERPETUO_SMTP_HOST is set")
        if self.require_email_verification and not self.smtp_host:
            raise ValueError(
                "PERPETUO_REQUIRE_EMAIL_VERIFICATION needs mail: set PERPETUO_SMTP_HOST"
            )
        if self.refresh_token_ttl < self.access_token_ttl:
            raise ValueError(
                "PERPETUO_REFRESH_TOKEN_TTL must be at least PERPETUO_ACCESS_TOKEN_TTL"
            )
        origins = [o.strip() for o in self.cors_origins.split(",") if o.strip()]
        if "*" in origins and self.cors_allow_credentials:
            raise ValueError(
                "PERPETUO_CORS_ALLOW_CREDENTIALS cannot be used with PERPETUO_CORS_ORIGINS=*: "
                "name the origins"
            )
        return self

    @field_validator("database_url")
    @classmethod
    def _check_database_url(cls, value: str | None) -> str | None:
        return None if not value else urls.database_url(value)

    @field_validator("redis_url")
    @classmethod
    def _check_redis_url(cls, value: str | None) -> str | None:
        return None if not value else urls.redis_url(value)

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
