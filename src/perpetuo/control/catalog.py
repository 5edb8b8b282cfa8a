"""The model catalog: the platform's models (its aliases), who serves each, at what price,
with which limits, and how each deployment is doing right now.

Everything comes from memory: the routing table, the pricing catalog (metering/prices.json
with each deployment's `price:` over it) and the router's health state, which is this
instance's own view (each instance learns its deployments' health by itself). Workspace
models are a tenant's own and never appear. Nothing here names an endpoint URL or a
credential.
"""

from __future__ import annotations

from collections.abc import Iterable
from decimal import Decimal
from typing import Any

from perpetuo.metering.pricing import PricingCatalog, UnitPrices
from perpetuo.routing.health import RoutingState
from perpetuo.routing.table import Alias, Deployment, RoutingTable
from perpetuo.schema.endpoints import Endpoint

Json = dict[str, Any]

# What goes in and comes out of each kind of work an alias serves.
MODALITIES: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    Endpoint.CHAT: (("text",), ("text",)),
    Endpoint.COMPLETIONS: (("text",), ("text",)),
    Endpoint.EMBEDDINGS: (("text",), ("embeddings",)),
    Endpoint.IMAGES: (("text", "image"), ("image",)),
    Endpoint.TRANSCRIPTIONS: (("audio",), ("text",)),
    Endpoint.SPEECH: (("text",), ("audio",)),
    Endpoint.RERANK: (("text",), ("scores",)),
    Endpoint.MODERATIONS: (("text",), ("classification",)),
}
ORDER = ("text", "image", "audio", "embeddings", "scores", "classification")


def modalities(endpoints: Iterable[str]) -> tuple[list[str], list[str]]:
    inputs: set[str] = set()
    outputs: set[str] = set()
    for endpoint in endpoints:
        given, made = MODALITIES.get(endpoint, ((), ()))
        inputs.update(given)
        outputs.update(made)
    return [m for m in ORDER if m in inputs], [m for m in ORDER if m in outputs]


def health(state: RoutingState, deployment: Deployment, now: float) -> Json:
    """The deployment's status (up, degraded, down, not_configured) and recent figures."""
    if deployment.target.key_problem is not None:
        return {"status": "not_configured"}
    snapshot = state.health(deployment.id).snapshot(now)
    breaker = snapshot["state"]
    if breaker == "open":
        status = "down"
    elif breaker == "half_open" or snapshot["error_rate"] > 0 or snapshot["retry_after_s"]:
        status = "degraded"
    else:
        status = "up"
    return {
        "status": status,
        "latency_ms": snapshot["latency_ms"],
        "ttft_ms": snapshot["ttft_ms"],
        "error_rate": snapshot["error_rate"],
        "requests_in_window": snapshot["requests_in_window"],
    }


def _usd(value: Decimal | None) -> float | None:
    return float(value) if value is not None else None


def pricing(deployment: Deployment, prices: PricingCatalog) -> Json | None:
    """USD per million tokens, and prices in other units where the model has them."""
    price = deployment.price
    units: UnitPrices | None = prices.units_for(deployment.model, deployment.config.price)
    if price is None and units is None:
        return None
    out: Json = {}
    if price is not None:
        out.update(
            input=_usd(price.input),
            output=_usd(price.output),
            cached_input=_usd(price.cached_input),
            cache_write=_usd(price.cache_write),
        )
    if units is not None:
        if units.per_image:
            out["per_image"] = {k or "any": float(v) for k, v in units.per_image.items()}
        for name in ("image_input", "per_minute", "per_million_characters"):
            if (value := getattr(units, name)) is not None:
                out[name] = float(value)
        if units.per_thousand_searches is not None:
            out["per_thousand_searches"] = float(units.per_thousand_searches)
    return out


def deployment_view(
    dep: Deployment, state: RoutingState, prices: PricingCatalog, now: float
) -> Json:
    return {
        "provider": dep.provider,
        "type": dep.target.provider_type,
        "model": dep.model,
        "pricing": pricing(dep, prices),
        "context_window": prices.context_window_for(dep.model, dep.target.provider_type),
        "max_output_tokens": dep.max_output_tokens,
        "health": health(state, dep, now),
    }


def _overall(statuses: list[str]) -> str:
    if "up" in statuses:
        return "up" if all(s == "up" for s in statuses) else "degraded"
    if "degraded" in statuses:
        return "degraded"
    return "down" if "down" in statuses else "not_configured"


def model_view(alias: Alias, state: RoutingState, prices: PricingCatalog, now: float) -> Json:
    providers = [deployment_view(d, state, prices, now) for g in alias.groups for d in g]
    inputs, outputs = modalities(alias.endpoints)
    windows = [p["context_window"] for p in providers]
    return {
        "id": alias.name,
        "object": "model",
        "description": alias.config.description,
        "endpoints": sorted(alias.endpoints),
        "input_modalities": inputs,
        "output_modalities": outputs,
        # What every provider of the alias can take and give (None when one is unknown).
        "context_window": None if None in windows else min(windows, default=None),
        "max_output_tokens": alias.max_output_tokens,
        "status": _overall([p["health"]["status"] for p in providers]),
        "providers": providers,
    }


def catalog_models(table: RoutingTable, state: RoutingState, prices: PricingCatalog) -> list[Json]:
    now = state.clock()
    return [model_view(table.aliases[name], state, prices, now) for name in sorted(table.aliases)]


def catalog_providers(table: RoutingTable, state: RoutingState) -> list[Json]:
    """Each provider that serves a platform model: its type, models and overall health."""
    now = state.clock()
    found: dict[str, Json] = {}
    for name in sorted(table.aliases):
        for group in table.aliases[name].groups:
            for dep in group:
                entry = found.setdefault(
                    dep.provider,
                    {
                        "id": dep.provider,
                        "object": "provider",
                        "type": dep.target.provider_type,
                        "models": [],
                        "_statuses": {},
                    },
                )
                if name not in entry["models"]:
                    entry["models"].append(name)
                entry["_statuses"][dep.id] = health(state, dep, now)["status"]
    out = []
    for entry in found.values():
        statuses = list(entry.pop("_statuses").values())
        out.append({**entry, "deployments": len(statuses), "status": _overall(statuses)})
    return sorted(out, key=lambda e: e["id"])
