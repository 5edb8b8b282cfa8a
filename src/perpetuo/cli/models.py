"""`perpetuo models discover PROVIDER`: a configured provider's models, from its own list, as
alias YAML to paste into the config (with the catalog's prices and limits in comments)."""

from __future__ import annotations

import json
import os
from pathlib import Path

import click

from perpetuo.cli.common import Group, config_option, fail, run, settings_for


@click.group(
    cls=Group, no_args_is_help=True, help="Discover a provider's models and propose aliases."
)
def group() -> None:
    pass


@group.command("discover")
@click.argument("provider", help="A provider name of the config file.")
@config_option
@click.option("--match", "-m", default=None, help="Only models whose id contains this.")
@click.option("--json", "as_json", is_flag=True, help="Print the proposals as JSON.")
def discover(provider: str, config: Path | None, match: str | None, as_json: bool) -> None:
    """List PROVIDER's models and propose an alias for each (YAML on stdout)."""
    from perpetuo.config import ConfigError, load_config
    from perpetuo.config.model import DeploymentConfig
    from perpetuo.control import model_discovery
    from perpetuo.metering.pricing import default_catalog
    from perpetuo.providers.registry import adapter_for, build_target
    from perpetuo.schema.errors import UpstreamError
    from perpetuo.transport.client import HTTPClient
    from perpetuo.transport.errors import TransportError
    from perpetuo.transport.proxy import ProxyEnvironment

    settings = settings_for(config)
    try:
        gateway_config = load_config(settings.config)
    except ConfigError as exc:
        fail(str(exc))
    spec = gateway_config.providers.get(provider)
    if spec is None:
        known = ", ".join(sorted(gateway_config.providers)) or "none"
        fail(f"no provider {provider!r} in the config (providers: {known})")
    try:
        target = build_target(provider, spec, DeploymentConfig(provider=provider, model="-"))
    except ValueError as exc:
        fail(f"provider {provider!r}: {exc}")
    if target.key_problem:
        fail(f"provider {provider!r}: {target.key_problem}")

    async def fetch() -> list:
        client = HTTPClient(proxies=ProxyEnvironment.from_environ(os.environ))
        try:
            return await model_discovery.list_models(client, adapter_for(spec.type), target)
        finally:
            await client.aclose()

    try:
        models = run(fetch())
    except UpstreamError as exc:
        fail(f"provider {provider!r} answered {exc.status or 'an error'}: {exc.message}", 1)
    except TransportError as exc:
        fail(f"provider {provider!r} could not be reached: {exc}", 1)
    if match:
        models = [m for m in models if match.lower() in m.id.lower()]
    found = model_discovery.proposals(models, provider, spec.type, default_catalog())
    if as_json:
        click.echo(json.dumps([p.view() for p in found], indent=2))
        return
    click.echo(f"# {len(found)} models of provider {provider} ({spec.type})", err=True)
    click.echo(model_discovery.as_yaml(found), nl=False)
