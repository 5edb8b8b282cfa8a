"""Provider types by name: the adapters, and how a config entry becomes a call Target."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from importlib import import_module

from perpetuo.config.model import DeploymentConfig, ProviderConfig, UpstreamLimitsConfig
from perpetuo.providers.azure import AzureOpenAIAdapter
from perpetuo.providers.base import ProviderAdapter, Target
from perpetuo.providers.openai import OpenAIAdapter
from perpetuo.providers.presets import OPENAI_PRESETS
from perpetuo.transport.caps import ResponseCaps
from perpetuo.transport.egress import EgressPolicy
from perpetuo.transport.url import URL, Timeouts

DEMO = "demo"


# Provider types whose adapter module is imported on first use: a gateway loads only the
# adapters its providers need (Bedrock's alone is ~12 ms of start-up), and a broken optional
# adapter cannot stop the OpenAI path from loading.
_ON_FIRST_USE = {
    "anthropic": ("perpetuo.providers.anthropic", "AnthropicAdapter"),
    "gemini": ("perpetuo.providers.gemini", "GeminiAdapter"),
    "bedrock": ("perpetuo.providers.bedrock", "BedrockAdapter"),
    "vertex": ("perpetuo.providers.vertex", "VertexAdapter"),
    "cohere": ("perpetuo.providers.cohere", "CohereAdapter"),
}


class _Adapters(Mapping[str, ProviderAdapter]):
    """Every provider type by name; an optional adapter is built when first looked up."""

    def __init__(self) -> None:
        self._built: dict[str, ProviderAdapter] = {
            name: OpenAIAdapter(name, quirks) for name, quirks in OPENAI_PRESETS.items()
        }
        self._built["azure"] = AzureOpenAIAdapter()
        self._names = sorted({*self._built, *_ON_FIRST_USE})

    def __getitem__(self, name: str) -> ProviderAdapter:
        adapter = self._built.get(name)
        if adapter is None:
            module, attribute = _ON_FIRST_USE[name]  # KeyError: no such type
            adapter = self._built[name] = getattr(import_module(module), attribute)()
        return adapter

    def __iter__(self) -> Iterator[str]:
        return iter(self._names)

    def __len__(self) -> int:
        return len(self._names)


ADAPTERS: Mapping[str, ProviderAdapter] = _Adapters()


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
