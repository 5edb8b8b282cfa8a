"""The configuration of upstreams: providers (how to reach them and what they may send back),
their prices, and the model aliases that route to their deployments."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field, SecretStr, field_validator, model_validator

from perpetuo.cache.policy import CachePolicy
from perpetuo.config.strict import Strict as _Strict
from perpetuo.guardrails.policy import GuardrailPolicy
from perpetuo.schema.endpoints import Endpoint
from perpetuo.transport.proxy import Proxy
from perpetuo.transport.route import ConnectOptions
from perpetuo.transport.tls import TLSSettings

# "priority" is a synonym of "default": priority groups, then configured order.
Strategy = Literal[
    "default", "priority", "fastest", "cheapest", "reliable", "weighted", "least-busy"
]


class TimeoutsConfig(_Strict):
    connect: Annotated[float, Field(gt=0)] = 10.0
    first_byte: Annotated[float, Field(gt=0)] = 120.0
    read: Annotated[float, Field(gt=0)] = 120.0
    total: Annotated[float, Field(gt=0)] | None = 600.0


class HealthCheckConfig(_Strict):
    """An active probe of a provider's deployments, feeding their circuit breakers."""

    interval: Annotated[float, Field(gt=0)] = 30.0
    timeout: Annotated[float, Field(gt=0)] = 5.0
    probe: Literal["models", "chat"] = Field(
        default="models",
        description="models: list the provider's models (one call per provider, free); "
        "chat: a one-token completion per deployment (exercises the model itself)",
    )


class UpstreamLimitsConfig(_Strict):
    """What one upstream response may make the gateway hold or believe. Past a size limit
    the attempt ends with `upstream_response_too_large` (another deployment may serve).
    Under a provider, only the keys given there replace the global ones."""

    max_body_bytes: Annotated[int, Field(ge=1024)] = Field(
        default=32 * 1024 * 1024, description="A whole non-streamed body (decoded)"
    )
    max_event_bytes: Annotated[int, Field(ge=1024)] = Field(
        default=1024 * 1024, description="One SSE line, and one stream event's data"
    )
    max_decompressed_bytes: Annotated[int, Field(ge=1024)] = Field(
        default=64 * 1024 * 1024, description="All gzip/deflate output of one response"
    )
    max_decompression_ratio: Annotated[int, Field(ge=2)] = Field(
        default=200, description="Decoded over compressed size (judged past the first MiB)"
    )
    max_retry_after: Annotated[float, Field(ge=0, le=3600)] = Field(
        default=60.0,
        description="Upstream Retry-After is cut to this many seconds: how long a deployment "
        "is set aside and what clients are told",
    )
    max_buffered_bytes: Annotated[int, Field(ge=1024 * 1024)] = Field(
        default=64 * 1024 * 1024,
        description="Global only, read at start: all large bodies being read at once, "
        "together (each body's first MiB uncounted)",
    )


# Provider fields that only some types read: a field set on another type is a mistake.
_CLOUD_FIELDS: dict[str, frozenset[str]] = {
    "bedrock": frozenset(
        {"region", "aws_access_key_id", "aws_secret_access_key", "aws_session_token"}
        | {"aws_profile", "credential_chain"}
    ),
    "vertex": frozenset(
        {"location", "service_account_json", "service_account_file", "access_token"}
        | {"credential_chain"}
    ),
    "cohere": frozenset({"input_type"}),
}
_CLOUD_FIELDS["bedrock"] |= {"input_type"}  # Cohere's embed models there


class ProviderConfig(_Strict):
    """A named upstream connection: where it is, how to authenticate, how long to wait."""

    type: str = Field(
        description="openai, azure, anthropic, gemini, bedrock, vertex, or an "
        "OpenAI-compatible preset"
    )
    api_base: str | None = Field(default=None, description="Base URL; defaults per type")
    api_key: SecretStr | None = Field(
        default=None,
        description="The provider's API key (bedrock: a Bedrock API key, instead of AWS keys; "
        "vertex: a service-account JSON key or an access token)",
    )
    api_version: str | None = Field(
        default=None,
        description="Azure `api-version` query value; Anthropic `anthropic-version`; "
        "Vertex AI API version (v1)",
    )
    organization: str | None = None
    project: str | None = Field(
        default=None, description="OpenAI project header; vertex: the Google Cloud project id"
    )
    # -- bedrock ---------------------------------------------------------------------------
    region: str | None = Field(
        default=None, description="bedrock: the AWS region (us-east-1); else from api_base"
    )
    aws_access_key_id: str | None = Field(default=None, description="bedrock: AWS access key")
    aws_secret_access_key: SecretStr | None = Field(
        default=None, description="bedrock: the access key's secret"
    )
    aws_session_token: SecretStr | None = Field(
        default=None, description="bedrock: session token of temporary keys"
    )
    aws_profile: str | None = Field(
        default=None, description="bedrock: a profile of the shared AWS credentials files"
    )
    credential_chain: bool = Field(
        default=False,
        description="bedrock, vertex: without credentials here, find them as the provider's "
        "SDKs do (environment, shared files, container and instance roles; Google application "
        "default credentials and the metadata server)",
    )
    # -- vertex ----------------------------------------------------------------------------
    location: str | None = Field(
        default=None, description="vertex: the Google Cloud location (us-central1, global)"
    )
    service_account_json: SecretStr | None = Field(
        default=None, description="vertex: a service-account JSON key, as text"
    )
    service_account_file: str | None = Field(
        default=None, description="vertex: the path of a service-account JSON key file"
    )
    access_token: SecretStr | None = Field(
        default=None, description="vertex: an OAuth access token (it is not refreshed)"
    )
    # -- cohere, bedrock ---------------------------------------------------------------------
    input_type: str | None = Field(
        default=None,
        min_length=1,
        description="cohere, bedrock: what embedded text is for when a request does not say "
        "(search_document, search_query, classification, clustering; default search_document)",
    )
    headers: dict[str, str] = Field(default_factory=dict, description="Extra upstream headers")
    timeouts: TimeoutsConfig = Field(default_factory=TimeoutsConfig)
    verify_tls: bool = True
    proxy: SecretStr | None = Field(
        default=None,
        description="Outbound proxy for this provider, http(s)://[user:password@]host:port, "
        "or none (direct, whatever HTTPS_PROXY says); unset: the environment's",
    )
    ca_bundle: str | None = Field(
        default=None,
        description="PEM file of the CAs the upstream's certificate must chain to "
        "(instead of the system's)",
    )
    client_cert: str | None = Field(
        default=None, description="PEM client certificate for mutual TLS (may hold the key)"
    )
    client_key: str | None = Field(default=None, description="PEM private key of client_cert")
    client_key_password: SecretStr | None = Field(
        default=None, description="Password of client_key (use ${VAR})"
    )
    health_check: HealthCheckConfig | None = Field(
        default=None, description="Active health checks; off when absent"
    )
    upstream_limits: UpstreamLimitsConfig | None = Field(
        default=None, description="Overrides of the global upstream_limits for this provider"
    )
    test: bool = Field(
        default=False, description="A test provider: keys of test-only environments may use it"
    )

    @field_validator("proxy")
    @classmethod
    def _proxy_url(cls, value: SecretStr | None) -> SecretStr | None:
        text = value.get_secret_value().strip() if value is not None else ""
        if text and text.lower() != "none":
            Proxy.parse(text)  # its ValueError never repeats the credentials
        return value

    @field_validator("ca_bundle")
    @classmethod
    def _ca_bundle(cls, value: str | None) -> str | None:
        if value:
            TLSSettings(ca_bundle=value).context()  # ValueError names the file and the problem
        return value

    @model_validator(mode="after")
    def _client_certificate(self) -> ProviderConfig:
        tls = self.tls_settings()
        if tls is not None and tls.client_cert:
            tls.context()
        return self

    def tls_settings(self) -> TLSSettings | None:
        """The provider's CA bundle and client certificate; None when it sets neither."""
        if not (self.ca_bundle or self.client_cert or self.client_key):
            return None
        password = self.client_key_password
        return TLSSettings(
            verify=self.verify_tls,
            ca_bundle=self.ca_bundle,
            client_cert=self.client_cert,
            client_key=self.client_key,
            key_password=password.get_secret_value() if password else None,
        )

    def connect_options(self) -> ConnectOptions | None:
        """Proxy and TLS settings for the client; None when the provider sets neither (then
        the client keeps its direct path, or the environment's proxy)."""
        tls = self.tls_settings()
        proxy = self.proxy.get_secret_value().strip() if self.proxy is not None else ""
        if tls is None and not proxy:
            return None
        direct = proxy.lower() == "none"
        return ConnectOptions(
            proxy=Proxy.parse(proxy) if proxy and not direct else None, direct=direct, tls=tls
        )

    @field_validator("upstream_limits")
    @classmethod
    def _per_response_only(cls, value: UpstreamLimitsConfig | None) -> UpstreamLimitsConfig | None:
        if value is not None and "max_buffered_bytes" in value.model_fields_set:
            raise ValueError("max_buffered_bytes is a global limit (upstream_limits at the top)")
        return value

    @model_validator(mode="after")
    def _cloud_fields(self) -> ProviderConfig:
        own = _CLOUD_FIELDS.get(self.type, frozenset())
        for fields in _CLOUD_FIELDS.values():
            for name in sorted((fields - own) & self.model_fields_set):
                kinds = " and ".join(k for k, named in _CLOUD_FIELDS.items() if name in named)
                raise ValueError(f"{name} applies to provider type {kinds} only")
        if self.type == "bedrock":
            if (self.aws_access_key_id is None) != (self.aws_secret_access_key is None):
                raise ValueError("aws_access_key_id and aws_secret_access_key go together")
            if self.aws_session_token is not None and self.aws_access_key_id is None:
                raise ValueError("aws_session_token needs aws_access_key_id and its secret")
            if self.aws_profile is not None and self.aws_access_key_id is not None:
                raise ValueError("set aws_profile or aws_access_key_id, not both")
        if self.type == "vertex":
            given = [
                name
                for name in ("service_account_json", "service_account_file", "access_token")
                if getattr(self, name) is not None
            ]
            if len(given) > 1:
                raise ValueError(f"set one of {', '.join(given)}, not several")
        return self


Usd = Annotated[float, Field(ge=0)]


class PriceConfig(_Strict):
    """Overrides the pricing catalog for one deployment, field by field: USD per million
    tokens, and for models billed otherwise the catalog's other units."""

    input: Usd | None = None
    output: Usd | None = None
    cached_input: Usd | None = None
    cache_write: Usd | None = None
    per_image: Usd | dict[str, Usd] | None = Field(
        default=None, description='USD per image: one price, or by "quality/size", "size"'
    )
    image_input: Usd | None = Field(default=None, description="USD per million image tokens")
    per_minute: Usd | None = Field(default=None, description="USD per minute transcribed")
    per_million_characters: Usd | None = Field(
        default=None, description="USD per million characters spoken"
    )
    per_thousand_searches: Usd | None = Field(
        default=None, description="USD per 1,000 rerank searches"
    )


class DeploymentConfig(_Strict):
    provider: str
    model: str = Field(min_length=1, description="Upstream model name (Azure: deployment name)")
    weight: Annotated[float, Field(gt=0)] = 1.0
    priority: int = Field(default=0, description="Lower runs first under the default strategy")
    timeouts: TimeoutsConfig | None = None
    rpm: Annotated[int, Field(gt=0)] | None = None
    tpm: Annotated[int, Field(gt=0)] | None = None
    max_parallel: Annotated[int, Field(gt=0)] | None = None
    price: PriceConfig | None = None
    max_output_tokens: Annotated[int, Field(gt=0)] | None = Field(
        default=None,
        description="Most tokens one answer may have (else the pricing catalog's figure); "
        "a larger max_tokens is cut to it",
    )


class ModelAliasConfig(_Strict):
    deployments: list[DeploymentConfig] = Field(min_length=1)
    strategy: Strategy = "default"
    fallbacks: list[str] = Field(default_factory=list)
    context_window_fallbacks: list[str] = Field(default_factory=list)
    content_policy_fallbacks: list[str] = Field(default_factory=list)
    extra_params: list[str] = Field(
        default_factory=list,
        description="Non-OpenAI request parameters accepted for this alias and sent upstream",
    )
    endpoints: list[Endpoint] | None = Field(
        default=None,
        min_length=1,
        description="What the alias serves (chat, completions, embeddings, images, "
        "transcriptions, speech, rerank, moderations); else from each deployment's model "
        "(the pricing catalog's mode, then its name) and provider type",
    )
    description: str | None = None
    test: bool = Field(
        default=False,
        description="A test alias, usable by keys of test-only environments (so is an alias "
        "whose deployments all use test or demo providers)",
    )
    cache: CachePolicy | None = Field(
        default=None, description="Response-cache settings for this alias (over the workspace's)"
    )
    guardrails: GuardrailPolicy | None = Field(
        default=None, description="Guardrail policy for this alias (over the workspace's and key's)"
    )
