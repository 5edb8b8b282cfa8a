"""The YAML configuration file, as pydantic models (unknown keys are errors, not ignored)."""

from __future__ import annotations

import ipaddress
from typing import Annotated, Literal, NamedTuple

from pydantic import (
    Field,
    PrivateAttr,
    field_validator,
    model_validator,
)

from perpetuo.config.billing import BillingConfig
from perpetuo.config.currency import CurrencyConfig
from perpetuo.config.keys import ApiKeysConfig
from perpetuo.config.providers import (  # noqa: F401  (re-exported: their home was here)
    DeploymentConfig,
    HealthCheckConfig,
    ModelAliasConfig,
    PriceConfig,
    ProviderConfig,
    Strategy,
    TimeoutsConfig,
    UpstreamLimitsConfig,
)
from perpetuo.config.sso import SsoConfig
from perpetuo.config.strict import Strict as _Strict


class ResponseCacheConfig(_Strict):
    """Where cached answers live and what bounds them (workspaces enable caching)."""

    backend: Literal["auto", "memory", "redis"] = Field(
        default="auto", description="auto: Redis when PERPETUO_REDIS_URL is set, else memory"
    )
    max_entries: Annotated[int, Field(ge=1)] = Field(
        default=10_000, description="In-process store: entries across all workspaces"
    )
    max_bytes: Annotated[int, Field(ge=1024)] = Field(
        default=64 * 1024 * 1024, description="In-process store: bytes across all workspaces"
    )
    max_entry_bytes: Annotated[int, Field(ge=1024)] = Field(
        default=1024 * 1024, description="Larger answers are not cached"
    )
    max_ttl_seconds: Annotated[int, Field(ge=1)] = Field(
        default=7 * 86_400, description="Upper bound of any TTL (settings or x-perpetuo-cache-ttl)"
    )
    embedding_alias: str | None = Field(
        default=None, description="Alias that embeds prompts for semantic matching"
    )
    embedding_dimensions: Annotated[int, Field(ge=1)] | None = Field(
        default=None, description="`dimensions` asked of the embedding alias"
    )


class ServerConfig(_Strict):
    host: str | None = None
    port: Annotated[int, Field(gt=0, lt=65536)] | None = None
    max_request_body_bytes: Annotated[int, Field(gt=0)] = 16 * 1024 * 1024
    max_upload_bytes: Annotated[int, Field(gt=0)] = Field(
        default=26 * 1024 * 1024,
        description="multipart uploads (image edits, audio): the whole body, held while "
        "the request lasts so that a retry or fallback can send it again",
    )
    expose_upstream_errors: bool = Field(
        default=True,
        description="Pass upstream messages for client mistakes (4xx) on to the client",
    )


class RetryConfig(_Strict):
    """When and how long to wait before trying a deployment again within one request."""

    attempts_per_deployment: Annotated[int, Field(ge=1, le=10)] = Field(
        default=1, description="1: never retry the same deployment (failover only)"
    )
    base_delay: Annotated[float, Field(ge=0)] = 0.25
    max_delay: Annotated[float, Field(ge=0)] = 8.0
    max_retry_after: Annotated[float, Field(ge=0)] = Field(
        default=10.0, description="A longer upstream Retry-After is not waited for"
    )


class CircuitBreakerConfig(_Strict):
    consecutive_failures: Annotated[int, Field(ge=1)] = 5
    error_rate: Annotated[float, Field(gt=0, le=1)] = 0.5
    min_requests: Annotated[int, Field(ge=1)] = 20
    cooldown: Annotated[float, Field(gt=0)] = 30.0


class HealthStatsConfig(_Strict):
    """How recent behaviour is measured for the fastest and reliable strategies."""

    window: Annotated[float, Field(gt=0)] = Field(
        default=60.0, description="Seconds of outcomes behind error rates"
    )
    latency_alpha: Annotated[float, Field(gt=0, le=1)] = 0.3
    stale_after: Annotated[float, Field(gt=0)] = Field(
        default=300.0, description="A latency older than this counts as unmeasured"
    )
    exploration_rate: Annotated[float, Field(ge=0, le=1)] = 0.02


class RoutingConfig(_Strict):
    max_attempts: Annotated[int, Field(ge=1, le=20)] = Field(
        default=3, description="Upstream attempts per alias (the requested one and each fallback)"
    )
    request_timeout: Annotated[float, Field(gt=0)] = 600.0
    retry: RetryConfig = Field(default_factory=RetryConfig)
    circuit_breaker: CircuitBreakerConfig = Field(default_factory=CircuitBreakerConfig)
    health: HealthStatsConfig = Field(default_factory=HealthStatsConfig)
    default_output_tokens: Annotated[int, Field(ge=1)] = Field(
        default=512,
        description="Output tokens assumed when the client sets no limit (cheapest, tpm)",
    )


class EgressConfig(_Strict):
    """Where the gateway may connect for tenants (workspace credentials, connection tests,
    webhooks). Providers defined in this file are trusted and never checked."""

    allow_http: bool = Field(
        default=False, description="Allow plain-http tenant URLs (https only when false)"
    )
    allow_private: bool = Field(
        default=False,
        description="Allow tenant URLs on private, loopback and CGNAT addresses (link-local "
        "and metadata addresses stay refused unless listed in allow_cidrs)",
    )
    allow_hosts: list[str] = Field(
        default_factory=list,
        description='When set, tenant URLs may only name these hosts (exact or "*.suffix")',
    )
    deny_hosts: list[str] = Field(default_factory=list, description="Hosts always refused")
    allow_cidrs: list[str] = Field(
        default_factory=list, description="Networks always allowed (e.g. an internal vLLM subnet)"
    )
    deny_cidrs: list[str] = Field(default_factory=list, description="Networks always refused")
    proxy_resolves: bool = Field(
        default=False,
        description="Through an outbound proxy, send tenant host names for the proxy to "
        "resolve (its own rules must then refuse internal addresses) instead of addresses "
        "resolved and checked here",
    )
    max_hops: Annotated[int, Field(ge=1, le=20)] = Field(
        default=3,
        description="Requests that already passed through this many gateways are refused (508)",
    )

    @field_validator("allow_cidrs", "deny_cidrs")
    @classmethod
    def _networks(cls, value: list[str]) -> list[str]:
        for item in value:
            ipaddress.ip_network(item, strict=False)  # ValueError names the bad entry
        return value

    @field_validator("allow_hosts", "deny_hosts")
    @classmethod
    def _hosts(cls, value: list[str]) -> list[str]:
        return [h.strip().rstrip(".").lower() for h in value if h.strip()]


class PublicConfig(_Strict):
    """What the server shows people who have not signed in: all off by default."""

    catalog: bool = Field(
        default=False,
        description="The model catalog (GET /api/catalog/models, /api/catalog/providers and "
        "/ui/catalog): the platform's models, their providers, prices and live health",
    )
    rankings: bool = Field(
        default=False,
        description="Model rankings from usage across every workspace, as aggregates only "
        "(GET /api/rankings/models, /ui/rankings)",
    )
    rankings_window_days: Annotated[int, Field(ge=1, le=90)] = Field(
        default=7, description="Days of usage behind the rankings, unless a request asks"
    )
    rankings_min_workspaces: Annotated[int, Field(ge=1)] = Field(
        default=3,
        description="A model is ranked only when at least this many workspaces used it in "
        "the window (fewer could single one out)",
    )
    landing: bool = Field(
        default=False, description="The landing page (/ui/home, and / in browsers)"
    )
    pricing: bool = Field(
        default=False, description="The pricing page (/ui/pricing): plans, model prices"
    )
    name: Annotated[str, Field(min_length=1, max_length=80)] = Field(
        default="Perpetuo", description="The product name these pages show"
    )
    tagline: Annotated[str, Field(max_length=300)] = Field(
        default="One API for every model: routing, failover, budgets and usage in one place.",
        description="The landing page's headline",
    )


class KeySource(NamedTuple):
    """Where a provider's api_key came from: `${variable}`, and its state at load time."""

    variable: str
    state: Literal["set", "empty", "unset"]


class GatewayConfig(_Strict):
    server: ServerConfig = Field(default_factory=ServerConfig)
    routing: RoutingConfig = Field(default_factory=RoutingConfig)
    providers: dict[str, ProviderConfig] = Field(default_factory=dict)
    models: dict[str, ModelAliasConfig] = Field(default_factory=dict)
    cache: ResponseCacheConfig = Field(default_factory=ResponseCacheConfig)
    upstream_limits: UpstreamLimitsConfig = Field(default_factory=UpstreamLimitsConfig)
    egress: EgressConfig = Field(default_factory=EgressConfig)
    public: PublicConfig = Field(default_factory=PublicConfig)
    billing: BillingConfig = Field(default_factory=BillingConfig)
    sso: SsoConfig = Field(default_factory=SsoConfig)
    api_keys: ApiKeysConfig = Field(default_factory=ApiKeysConfig)
    currency: CurrencyConfig = Field(default_factory=CurrencyConfig)
    # provider -> the variable its api_key is read from (set by the loader).
    _key_variables: dict[str, KeySource] = PrivateAttr(default_factory=dict)

    @model_validator(mode="after")
    def _check_references(self) -> GatewayConfig:
        known = ", ".join(sorted(self.providers)) or "none"
        for alias, spec in self.models.items():
            for i, dep in enumerate(spec.deployments):
                if dep.provider not in self.providers:
                    raise ReferenceProblem(
                        f"models.{alias}.deployments[{i}].provider",
                        f"unknown provider {dep.provider!r} (defined: {known})",
                    )
            for kind in ("fallbacks", "context_window_fallbacks", "content_policy_fallbacks"):
                for target in getattr(spec, kind):
                    if target not in self.models:
                        raise ReferenceProblem(
                            f"models.{alias}.{kind}", f"unknown alias {target!r}"
                        )
                    if target == alias:
                        raise ReferenceProblem(
                            f"models.{alias}.{kind}", "an alias cannot fall back to itself"
                        )
        embedding = self.cache.embedding_alias
        if embedding is not None and embedding not in self.models:
            raise ReferenceProblem("cache.embedding_alias", f"unknown alias {embedding!r}")
        return self


class ReferenceProblem(ValueError):
    """A cross-reference in the file that points nowhere."""

    def __init__(self, field: str, problem: str) -> None:
        super().__init__(f"{field}: {problem}")
        self.field = field
        self.problem = problem
