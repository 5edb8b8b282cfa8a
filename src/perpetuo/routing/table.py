"""The routing table: each alias a client may name, with the deployments that can serve it."""

from __future__ import annotations

from dataclasses import dataclass, field, replace

from perpetuo.config.loader import ConfigError
from perpetuo.config.model import (
    DeploymentConfig,
    GatewayConfig,
    HealthCheckConfig,
    ModelAliasConfig,
)
from perpetuo.metering.pricing import Price, PricingCatalog, default_catalog
from perpetuo.providers.base import ProviderAdapter, Target
from perpetuo.providers.registry import DEMO, adapter_for, build_target
from perpetuo.routing.capabilities import deployment_endpoints
from perpetuo.schema.endpoints import ALL_ENDPOINTS
from perpetuo.transport.egress import EgressPolicy


@dataclass(frozen=True, slots=True)
class Deployment:
    """One (provider, upstream model) pair. The id is shared by every alias that uses the
    same pair, so health and latency are tracked once for it."""

    id: str
    target: Target
    adapter: ProviderAdapter
    config: DeploymentConfig
    price: Price | None = None  # catalog price with the deployment's `price:` laid over it
    health_check: HealthCheckConfig | None = None  # the provider's active probe, if any
    max_output_tokens: int | None = None  # config, else the catalog; None: unknown
    endpoints: frozenset[str] = ALL_ENDPOINTS  # what it serves (routing/capabilities.py)
    # Derived from config once, read on every request.
    token_capped: bool = field(init=False)  # rpm or tpm set
    uncapped: bool = field(init=False)  # no rpm, tpm or max_parallel

    def __post_init__(self) -> None:
        cfg = self.config
        token_capped = cfg.rpm is not None or cfg.tpm is not None
        object.__setattr__(self, "token_capped", token_capped)
        object.__setattr__(self, "uncapped", not token_capped and cfg.max_parallel is None)

    @property
    def provider(self) -> str:
        return self.target.provider_name

    @property
    def model(self) -> str:
        return self.target.model


@dataclass(frozen=True, slots=True)
class Alias:
    name: str
    deployments: tuple[Deployment, ...]
    config: ModelAliasConfig
    test: bool = False  # keys of test-only environments may use it (is_test_alias)
    # Deployments by `priority` (lowest first), each group in configured order.
    groups: tuple[tuple[Deployment, ...], ...] = field(init=False)
    # The largest answer any deployment can give (None when one of them is unknown): a
    # client's larger max_tokens is cut to it before limits reserve tokens and budget.
    max_output_tokens: int | None = field(init=False)
    endpoints: frozenset[str] = field(init=False)  # what any of its deployments serves
    uniform: bool = field(init=False)  # every deployment serves all of `endpoints`

    def __post_init__(self) -> None:
        levels = sorted({d.config.priority for d in self.deployments})
        groups = tuple(
            tuple(d for d in self.deployments if d.config.priority == level) for level in levels
        )
        object.__setattr__(self, "groups", groups)
        known = [d.max_output_tokens for d in self.deployments]
        most = None if None in known else max(known)  # type: ignore[type-var]
        object.__setattr__(self, "max_output_tokens", most)
        served = frozenset().union(*(d.endpoints for d in self.deployments))
        object.__setattr__(self, "endpoints", served)
        object.__setattr__(self, "uniform", all(d.endpoints == served for d in self.deployments))

    def groups_serving(self, endpoint: str) -> tuple[tuple[Deployment, ...], ...]:
        """The priority groups with only the deployments that serve `endpoint`."""
        if self.uniform:
            return self.groups if endpoint in self.endpoints else ()
        kept = (tuple(d for d in group if endpoint in d.endpoints) for group in self.groups)
        return tuple(group for group in kept if group)

    @property
    def extra_params(self) -> frozenset[str]:
        return frozenset(self.config.extra_params)


def with_key_problem(target: Target, config: GatewayConfig, name: str) -> Target:
    """The target, marked unusable when its provider needs an API key and has none, saying
    which variable was meant to hold it (never a value)."""
    if target.api_key is not None or not adapter_for(target.provider_type).requires_key:
        return target
    source = config._key_variables.get(name)
    if source is None:
        problem = "no API key configured (api_key is not set in the config)"
    else:
        state = "not set" if source.state == "unset" else source.state
        problem = f"no API key configured ({source.variable} is {state})"
    return replace(target, key_problem=problem)


def is_test_alias(config: GatewayConfig, spec: ModelAliasConfig) -> bool:
    """Marked `test: true`, or served only by test providers (marked so, or the demo type,
    which answers from this process and costs nothing)."""
    if spec.test:
        return True
    providers = [config.providers[d.provider] for d in spec.deployments]
    return all(p.test or p.type == DEMO for p in providers)


def _check_test_fallbacks(aliases: dict[str, Alias], source: str) -> None:
    """A test alias falls back only to test aliases, so a test key never reaches a real
    provider through a fallback: one marked `test: true` that does is a mistake in the file;
    one that is a test alias only by its providers (a tenant's demo credential, say) is then
    not one. Repeated until stable, since that can change what other aliases fall back to."""
    kinds = ("fallbacks", "context_window_fallbacks", "content_policy_fallbacks")
    changed = True
    while changed:
        changed = False
        for alias in list(aliases.values()):
            if not alias.test:
                continue
            for kind in kinds:
                targets = getattr(alias.config, kind)
                real = [t for t in targets if t in aliases and not aliases[t].test]
                if real and alias.config.test:
                    raise ConfigError(
                        source,
                        f"models.{alias.name}.{kind}",
                        f"{real[0]!r} is not a test alias; a test alias falls back only to "
                        "test aliases",
                    )
                if real:
                    aliases[alias.name] = replace(alias, test=False)
                    changed = True
                    break


class RoutingTable:
    def __init__(self, aliases: dict[str, Alias]) -> None:
        self.aliases = aliases

    def get(self, name: str) -> Alias | None:
        return self.aliases.get(name)

    def names(self) -> list[str]:
        return list(self.aliases)

    @classmethod
    def build(
        cls,
        config: GatewayConfig,
        source: str = "config",
        catalog: PricingCatalog | None = None,
        egress: EgressPolicy | None = None,
    ) -> RoutingTable:
        """Resolve every deployment; a problem raises ConfigError naming the field.
        `egress` is set for tables a tenant configured: their connections are checked."""
        catalog = catalog or default_catalog()
        for name, provider in config.providers.items():
            try:
                adapter_for(provider.type)
            except ValueError as exc:
                raise ConfigError(source, f"providers.{name}.type", str(exc)) from None
        aliases: dict[str, Alias] = {}
        for alias_name, spec in config.models.items():
            deployments = []
            declared = [str(e) for e in spec.endpoints] if spec.endpoints else None
            for i, dep in enumerate(spec.deployments):
                provider = config.providers[dep.provider]
                try:
                    target = build_target(
                        dep.provider, provider, dep, egress, config.upstream_limits
                    )
                    target = with_key_problem(target, config, dep.provider)
                except ValueError as exc:
                    field = f"models.{alias_name}.deployments[{i}]"
                    raise ConfigError(source, field, f"provider {dep.provider!r}: {exc}") from None
                deployments.append(
                    Deployment(
                        id=f"{dep.provider}/{dep.model}",
                        target=target,
                        adapter=adapter_for(provider.type),
                        config=dep,
                        price=catalog.price_for(dep.model, dep.price, provider.type),
                        health_check=provider.health_check,
                        max_output_tokens=dep.max_output_tokens
                        or catalog.max_output_for(dep.model, provider.type),
                        endpoints=deployment_endpoints(
                            adapter_for(provider.type), dep.model, catalog, declared
                        ),
                    )
                )
            alias = Alias(alias_name, tuple(deployments), spec, is_test_alias(config, spec))
            if declared and (missing := set(declared) - alias.endpoints):
                raise ConfigError(
                    source,
                    f"models.{alias_name}.endpoints",
                    f"{', '.join(sorted(missing))}: not offered by the provider type of any "
                    "of its deployments",
                )
            aliases[alias_name] = alias
        _check_test_fallbacks(aliases, source)
        return cls(aliases)

    def describe(self) -> list[dict[str, object]]:
        """One row per deployment, in priority order, for `perpetuo check-config`."""
        rows: list[dict[str, object]] = []
        for alias in self.aliases.values():
            ordered = [dep for group in alias.groups for dep in group]
            for order, dep in enumerate(ordered, 1):
                rows.append(
                    {
                        "alias": alias.name,
                        "order": order,
                        "provider": dep.provider,
                        "type": dep.target.provider_type,
                        "model": dep.model,
                        "endpoint": str(dep.target.base_url),
                        "strategy": alias.config.strategy,
                    }
                )
        return rows
