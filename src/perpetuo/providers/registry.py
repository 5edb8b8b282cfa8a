"""Provider types by name: the adapters, and how a config entry becomes a call Target."""

from __future__ import annotations

from perpetuo.config.model import DeploymentConfig, ProviderConfig, UpstreamLimitsConfig
from perpetuo.providers.azure import AzureOpenAIAdapter
from perpetuo.providers.base import ProviderAdapter, Target
from perpetuo.providers.openai import OpenAIAdapter
from perpetuo.providers.presets import OPENAI_PRESETS
from perpetuo.transport.caps import ResponseCaps
from perpetuo.transport.egress import EgressPolicy
from perpetuo.transport.url import URL, Timeouts

DEMO = "demo"


def _build_registry() -> dict[str, ProviderAdapter]:
    registry: dict[str, ProviderAdapter] = {
        name: OpenAIAdapter(name, quirks) for name, quirks in OPENAI_PRESETS.items()
    }
    registry["azure"] = AzureOpenAIAdapter()
    # Imported here so a broken optional adapter cannot stop the OpenAI path from loading.
    from perpetuo.providers.anthropic import AnthropicAdapter
    from perpetuo.providers.bedrock import BedrockAdapter
    from perpetuo.providers.cohere import CohereAdapter
    from perpetuo.providers.gemini import GeminiAdapter
    from perpetuo.providers.vertex import VertexAdapter

    registry["anthropic"] = AnthropicAdapter()
    registry["gemini"] = GeminiAdapter()
    registry["bedrock"] = BedrockAdapter()
    registry["vertex"] = VertexAdapter()
    registry["cohere"] = CohereAdapter()
    return registry


ADAPTERS: dict[str, ProviderAdapter] = _build_registry()


def adapter_for(provider_type: str) -> ProviderAdapter:
    try:
        return ADAPTERS[provider_type]
    except KeyError:
        known = ", ".join(sorted(ADAPTERS))
        raise ValueError(f"unknown provider type {provider_type!r} (known: {known})") from None


def build_target(
    name: str,
    provider: ProviderConfig,
    deployment: DeploymentConfig,
    egress: EgressPolicy | None = None,
    limits: UpstreamLimitsConfig | None = None,
) -> Target:
    """The Target for one deployment; ValueError says what is missing or wrong. `egress`:
    the policy every connection must pass (tenant-configured providers only)."""
    adapter = adapter_for(provider.type)
    cloud = adapter.cloud_access(provider, egress)
    base = provider.api_base or (cloud.endpoint if cloud else adapter.default_api_base)
    if provider.type == DEMO and not base:
        from perpetuo.demo.server import embedded  # the demo server of this process

        base = embedded().url
    if not base:
        raise ValueError(f"api_base is required for provider type {provider.type!r}")
    timeouts_cfg = deployment.timeouts or provider.timeouts
    target = Target(
        provider_name=name,
        provider_type=provider.type,
        model=deployment.model,
        base_url=URL.parse(base),
        # An empty key (`${VAR:-}` with VAR unset) means none: the provider will say 401.
        api_key=(provider.api_key.get_secret_value() if provider.api_key else None) or None,
        api_version=provider.api_version,
        organization=provider.organization,
        project=cloud.project if cloud else provider.project,
        headers=tuple((k.lower(), v) for k, v in provider.headers.items()),
        timeouts=Timeouts(
            connect=timeouts_cfg.connect,
            first_byte=timeouts_cfg.first_byte,
            read=timeouts_cfg.read,
            total=timeouts_cfg.total,
        ),
        verify_tls=provider.verify_tls,
        connection=provider.connect_options(),
        egress=egress,
        caps=response_caps(limits or UpstreamLimitsConfig(), provider.upstream_limits),
        key_problem=cloud.problem if cloud else None,
        region=cloud.region if cloud else None,
        credentials=cloud.credentials if cloud else None,
        input_type=provider.input_type,
    )
    adapter.validate_target(target)
    return target


def response_caps(
    limits: UpstreamLimitsConfig, override: UpstreamLimitsConfig | None = None
) -> ResponseCaps:
    """The global upstream limits with the keys a provider set laid over them."""
    values = limits.model_dump(exclude={"max_buffered_bytes"})  # process-wide, not per call
    if override is not None:
        values.update({name: getattr(override, name) for name in override.model_fields_set})
    return ResponseCaps(**values)
