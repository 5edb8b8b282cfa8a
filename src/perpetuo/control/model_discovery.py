"""Model discovery: a provider's models, from its own list endpoint, as alias proposals.

Used by `perpetuo models discover PROVIDER` (a provider of the config file) and by the admin
API and dashboard (a workspace's stored credential, whose address goes through the egress
policy). Each proposal names an alias (the model id without its path, lower case), the
deployment, what the model serves, and what the pricing catalog (or the list itself, for
OpenRouter) says of its price, output limit and context window. Nothing is created here:
the CLI prints YAML to paste, the dashboard offers buttons that create aliases.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

import yaml

from perpetuo.config.model import DeploymentConfig, ProviderConfig
from perpetuo.control.connection_test import UNREACHABLE
from perpetuo.control.errors import invalid
from perpetuo.metering.pricing import PricingCatalog
from perpetuo.providers.base import ProviderAdapter, Target
from perpetuo.providers.listing import ListedModel
from perpetuo.providers.registry import adapter_for, build_target
from perpetuo.schema.errors import (
    ErrorCode,
    ErrorType,
    GatewayError,
    UpstreamError,
    UpstreamErrorKind,
)
from perpetuo.transport.client import HTTPClient
from perpetuo.transport.egress import EgressPolicy
from perpetuo.transport.errors import TransportError
from perpetuo.transport.url import Timeouts

MAX_PAGES = 20  # 20,000 models at most: past that a provider's list is not worth reading
MAX_MODELS = 5000
TIMEOUTS = Timeouts(connect=10, first_byte=30, read=30, total=60)
_ALIAS_CHARS = re.compile(r"[^a-z0-9._:-]+")


@dataclass(frozen=True, slots=True)
class Proposal:
    alias: str
    provider: str
    model: ListedModel
    endpoints: tuple[str, ...]  # from the list, else the catalog; () when neither says
    input_price: float | None  # USD per million tokens
    output_price: float | None
    max_output: int | None
    context_window: int | None

    def view(self) -> dict[str, Any]:
        return {
            "alias": self.alias,
            "provider": self.provider,
            "model": self.model.id,
            "endpoints": list(self.endpoints),
            "input_price": self.input_price,
            "output_price": self.output_price,
            "max_output_tokens": self.max_output,
            "context_window": self.context_window,
        }


async def list_models(
    client: HTTPClient,
    adapter: ProviderAdapter,
    target: Target,
    egress: EgressPolicy | None = None,
) -> list[ListedModel]:
    """Every page of the provider's model list. Raises the provider's classified error
    (UpstreamError) for an answer that is not a success, TransportError when unreachable."""
    if target.credentials is not None:  # a cloud provider's token first
        await target.credentials.ready(client)
    models: list[ListedModel] = []
    cursor: str | None = None
    for _ in range(MAX_PAGES):
        call = adapter.models_request(target, cursor)
        if egress is not None:
            egress.check_url(str(call.url))
        response = await client.request(
            call.method,
            call.url,
            call.headers,
            call.body,
            TIMEOUTS,
            verify_tls=target.verify_tls,
            egress=egress,
            connection=target.connection,
        )
        body = await response.read()
        if response.status >= 300:
            raise adapter.error(response.status, response.headers, body)
        page = adapter.models_page(body, target)
        models.extend(page.models)
        if not page.cursor or page.cursor == cursor or len(models) >= MAX_MODELS:
            break
        cursor = page.cursor
    if not models:
        raise UpstreamError(UpstreamErrorKind.NOT_FOUND, "the provider listed no models")
    return models[:MAX_MODELS]


async def discover_for_credential(
    client: HTTPClient, row: Any, secret: str, egress: EgressPolicy, catalog: PricingCatalog
) -> list[dict[str, Any]]:
    """Alias proposals for a workspace's stored credential (its address goes through the
    egress policy). The provider's refusal is a 502 that quotes it; every way of not getting
    an answer is the same 502, so the action cannot be used to scan ports."""
    provider = ProviderConfig(
        type=row.provider_type, api_base=row.api_base, api_key=secret, api_version=row.api_version
    )
    deployment = DeploymentConfig(provider=row.name, model="-")
    try:
        target = build_target(row.name, provider, deployment, egress)
        models = await list_models(client, adapter_for(row.provider_type), target, egress)
    except ValueError as exc:
        raise invalid(str(exc)) from None
    except UpstreamError as exc:
        status = exc.status or "an error"
        raise _upstream(f"The provider answered {status}: {exc.message}") from None
    except TransportError:
        raise _upstream(UNREACHABLE) from None
    return [p.view() for p in proposals(models, row.name, row.provider_type, catalog)]


def _upstream(message: str) -> GatewayError:
    return GatewayError(502, message, type=ErrorType.UPSTREAM, code=ErrorCode.UPSTREAM_ERROR)


def proposals(
    models: list[ListedModel], provider: str, provider_type: str, catalog: PricingCatalog
) -> list[Proposal]:
    """One alias per model, named after it; two models that would share a name keep the
    whole id instead."""
    short = [alias_name(m.id) for m in models]
    taken = {name for name in short if short.count(name) > 1}
    out = []
    for model, name in zip(models, short, strict=True):
        if name in taken:
            name = _ALIAS_CHARS.sub("-", model.id.lower()).strip("-")
        price = catalog.lookup(model.id, provider_type)
        endpoints = model.endpoints
        mode = catalog.mode_for(model.id, provider_type)
        if endpoints is None and mode is not None and mode != "chat":
            endpoints = frozenset({_MODE_ENDPOINT.get(mode, mode)})
        out.append(
            Proposal(
                alias=name,
                provider=provider,
                model=model,
                endpoints=tuple(sorted(endpoints or ())),
                input_price=model.input_price if price is None else float(price.input),
                output_price=model.output_price if price is None else float(price.output),
                max_output=catalog.max_output_for(model.id, provider_type) or model.max_output,
                context_window=catalog.context_window_for(model.id, provider_type)
                or model.context_window,
            )
        )
    return sorted(out, key=lambda p: p.alias)


_MODE_ENDPOINT = {"embedding": "embeddings", "image": "images", "transcription": "transcriptions"}


def alias_name(model_id: str) -> str:
    """`accounts/fireworks/models/deepseek-v3` -> `deepseek-v3`, `models/gemini-2.5-flash` ->
    `gemini-2.5-flash`, `Qwen/Qwen3-8B` -> `qwen3-8b`."""
    name = model_id.rstrip("/").rsplit("/", 1)[-1].lower()
    return _ALIAS_CHARS.sub("-", name).strip("-") or "model"


def as_yaml(found: list[Proposal]) -> str:
    """A `models:` section to paste into the config file (an alias that serves only chat
    says nothing of endpoints; the others name theirs)."""
    lines = ["models:"]
    for proposal in found:
        lines.append(f"  {_quote(proposal.alias)}:{_comment(proposal)}")
        lines.append("    deployments:")
        lines.append(f"      - provider: {_quote(proposal.provider)}")
        lines.append(f"        model: {_quote(proposal.model.id)}")
        if proposal.endpoints and set(proposal.endpoints) != {"chat"}:
            lines.append(f"    endpoints: [{', '.join(proposal.endpoints)}]")
    return "\n".join(lines) + "\n"


def _comment(proposal: Proposal) -> str:
    notes = []
    if proposal.input_price is not None:
        notes.append(
            f"${proposal.input_price:g} in, ${proposal.output_price or 0:g} out per 1M tokens"
        )
    if proposal.context_window:
        notes.append(f"{proposal.context_window:,}-token context")
    if proposal.max_output:
        notes.append(f"{proposal.max_output:,} out at most")
    return f"  # {'; '.join(notes)}" if notes else ""


def _quote(text: str) -> str:
    """A YAML scalar: plain when it reads back as the same string, else double-quoted."""
    try:
        plain = yaml.safe_load(text) == text and ":" not in text and "#" not in text
    except yaml.YAMLError:
        plain = False
    if plain:
        return text
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'
