"""What `perpetuo serve` says when it starts: where it listens, what it loaded, and which
providers cannot work yet (naming the variable that should hold their key, never a value)."""

from __future__ import annotations

from typing import Any

from perpetuo.providers.registry import adapter_for


def key_warnings(config: Any) -> list[str]:
    """One line per provider that needs an API key and has none."""
    lines = []
    for name, provider in config.providers.items():
        has_key = provider.api_key is not None and provider.api_key.get_secret_value()
        if has_key or not adapter_for(provider.type).requires_key:
            continue
        source = config._key_variables.get(name)
        if source is None:
            why = "no api_key in the config"
        elif source.state == "unset":
            why = f"{source.variable} is not set"
        else:
            why = f"{source.variable} is empty"
        lines.append(
            f"warning: provider {name} ({provider.type}) has no API key: {why}; its "
            "deployments answer 503 provider_not_configured until it has one"
        )
    return lines


def banner(
    *, config_file: str, aliases: int, host: str, port: int, master_key: str, demo: bool
) -> list[str]:
    shown = "127.0.0.1" if host in ("0.0.0.0", "::") else host  # noqa: S104 (display only)
    url = f"http://{shown}:{port}"
    lines = [
        f"config:     {config_file} ({aliases} model aliases)",
        f"listening:  {url}  (OpenAI API at {url}/v1, Anthropic Messages at {url}/v1/messages)",
        f"dashboard:  {url}/ui",
        f"master key: {master_key}",
    ]
    if demo:
        lines.append(
            "demo:       the `demo` provider answers locally (no key, no network), labelled [demo]"
        )
    return lines
