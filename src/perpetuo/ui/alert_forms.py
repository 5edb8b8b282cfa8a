"""The Alerts page's forms as the alert services' specs, and rules' parameters as text.

A rule's parameters are written one `name = value` per line; a value that reads as JSON
(a number, true, a ["list"]) is taken as such, anything else as text. The services judge
them (control/alerts/rules.py); here they are only read and written back.
"""

from __future__ import annotations

import json
from typing import Any

from perpetuo.control.alerts import rules as kinds
from perpetuo.ui.forms import Errors, FormData

SECRET_FIELDS = ("url", "signing_secret")  # never shown again in a refused form


def params_text(params: dict[str, Any]) -> str:
    lines = []
    for name, value in params.items():
        if value is None:
            continue  # a default ("all", "none"): the service fills it in again
        shown = value if isinstance(value, str) else json.dumps(value)
        lines.append(f"{name} = {shown}")
    return "\n".join(lines)


def parse_params(text: str, errors: Errors, field: str) -> dict[str, Any]:
    params: dict[str, Any] = {}
    for line in text.splitlines():
        if not line.strip():
            continue
        name, sep, value = line.partition("=")
        if not sep or not name.strip():
            errors[field] = "Write one parameter per line, like: threshold = 0.2"
            continue
        try:
            params[name.strip()] = json.loads(value.strip())
        except ValueError:
            params[name.strip()] = value.strip()
    return params


def kind_reference(platform: bool) -> list[dict[str, Any]]:
    """The kinds this scope may have, each with its parameters (from the services' models)."""
    excluded = kinds.WORKSPACE_ONLY if platform else kinds.PLATFORM_ONLY
    reference = []
    for kind, model in kinds.PARAMS.items():
        if kind in excluded:
            continue
        params = [
            {
                "name": name,
                "required": info.is_required(),
                "default": None if info.is_required() else info.default,
                "description": info.description or "",
            }
            for name, info in model.model_fields.items()
        ]
        reference.append({"kind": kind, "params": params})
    return reference


def rule_data(form: FormData, prefix: str, errors: Errors, *, create: bool) -> dict[str, Any]:
    """RuleCreate/RuleUpdate fields from inputs named `<prefix>.<field>`."""
    data: dict[str, Any] = {
        "name": form.get(f"{prefix}.name"),
        "params": parse_params(form.get(f"{prefix}.params"), errors, f"{prefix}.params"),
        "channel_ids": form.getlist(f"{prefix}.channel_ids"),
        "enabled": form.checked(f"{prefix}.enabled"),
        "for_minutes": form.integer(f"{prefix}.for_minutes", errors) or 0,
        # Blank: never re-notify (sent as null, so an edit can turn it off).
        "renotify_minutes": form.integer(f"{prefix}.renotify_minutes", errors),
    }
    if create:
        data["kind"] = form.get(f"{prefix}.kind")
    return data


def channel_data(form: FormData, prefix: str) -> dict[str, Any]:
    """ChannelCreate fields from inputs named `<prefix>.<field>`; blanks are left out."""
    data: dict[str, Any] = {
        "name": form.get(f"{prefix}.name"),
        "kind": form.get(f"{prefix}.kind"),
        "url": form.optional(f"{prefix}.url"),
        "signing_secret": form.optional(f"{prefix}.signing_secret"),
        "to": form.lines(f"{prefix}.to"),
        "enabled": form.checked(f"{prefix}.enabled"),
    }
    return {k: v for k, v in data.items() if v is not None}


def kept(form: FormData) -> dict[str, Any]:
    """What a refused form shows again: everything but secrets; checkboxes as lists."""
    values: dict[str, Any] = {
        k: v for k, v in form.values.items() if k.rpartition(".")[2] not in SECRET_FIELDS
    }
    values["rule.channel_ids"] = form.getlist("rule.channel_ids")
    return values


# The inputs each create form shows; a problem with anything else is said above the form.
INPUTS = {
    "rule": {"name", "kind", "params", "channel_ids", "for_minutes", "renotify_minutes"},
    "channel": {"name", "kind", "url", "signing_secret", "to"},
}


def under(prefix: str, errors: Errors) -> Errors:
    """Validation problems keyed by the inputs' names (`rule.name`, `channel.url`)."""
    placed: Errors = {}
    for field, message in errors.items():
        if field in INPUTS[prefix]:
            placed[f"{prefix}.{field}"] = message
        else:
            where = f"{field}: " if field != "form" else ""
            placed[prefix] = f"{placed[prefix]} " if prefix in placed else ""
            placed[prefix] += where + message
    return placed
