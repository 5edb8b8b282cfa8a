"""Read the YAML file, substitute ${VAR} from the environment, validate into GatewayConfig.

Every failure is a ConfigError naming the file, the field and the problem.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from perpetuo.config.model import GatewayConfig, KeySource, ReferenceProblem

# ${NAME} or ${NAME:-default}; $${...} is a literal "${...}".
_VAR = re.compile(r"\$(\$?)\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")


class ConfigError(Exception):
    """The config's first problem (`field`, `problem`), and the others found with it, so one
    edit can fix them all."""

    def __init__(
        self, source: str, field: str | None, problem: str, others: list[str] | None = None
    ) -> None:
        where = f"{source}: {field}" if field else source
        listed = "".join(f"\n  also {other}" for other in others or ())
        super().__init__(f"{where}: {problem}{listed}")
        self.source = source
        self.field = field
        self.problem = problem
        self.others = others or []


def load_config(path: Path | str | None, env: Mapping[str, str] | None = None) -> GatewayConfig:
    """The validated config of `path`; no path gives an empty gateway (no models)."""
    if path is None:
        return GatewayConfig()
    source = str(path)
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(source, None, f"cannot read file ({exc.strerror})") from None
    try:
        raw = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}, column {mark.column + 1}" if mark else None
        problem = getattr(exc, "problem", None) or "invalid YAML"
        raise ConfigError(source, where, f"invalid YAML: {problem}") from None
    return parse_config(raw, source, os.environ if env is None else env)


def parse_config(raw: Any, source: str, env: Mapping[str, str]) -> GatewayConfig:
    if raw is None:
        raw = {}
    if not isinstance(raw, dict):
        raise ConfigError(source, None, "the top level must be a mapping")
    sources = key_variables(raw, env)
    raw = _interpolate(raw, "", source, env)
    try:
        config = GatewayConfig.model_validate(raw)
    except ValidationError as exc:
        found = [_problem(err) for err in exc.errors(include_url=False)]
        (field, problem), rest = found[0], found[1:MAX_LISTED]
        others = [f"{f}: {p}" if f else p for f, p in rest]
        if len(found) > MAX_LISTED:
            others.append(f"({len(found) - MAX_LISTED} more problems)")
        raise ConfigError(source, field, problem, others) from None
    config._key_variables = sources
    return config


MAX_LISTED = 20  # problems named in one error


def _problem(err: Any) -> tuple[str | None, str]:
    ctx_error = (err.get("ctx") or {}).get("error")
    if isinstance(ctx_error, ReferenceProblem):
        return ctx_error.field, ctx_error.problem
    problem = "unknown field" if err["type"] == "extra_forbidden" else err["msg"]
    return _dotted(err["loc"]) or None, problem


def key_variables(raw: dict[str, Any], env: Mapping[str, str]) -> dict[str, KeySource]:
    """Providers whose api_key is one `${VAR}`: which variable, and whether it is set and
    non-empty (for start-up warnings and errors that name the variable, never its value)."""
    found: dict[str, KeySource] = {}
    providers = raw.get("providers")
    for name, spec in providers.items() if isinstance(providers, dict) else ():
        value = spec.get("api_key") if isinstance(spec, dict) else None
        match = _VAR.fullmatch(value) if isinstance(value, str) else None
        if match and not match.group(1):
            variable = match.group(2)
            state = "empty" if env.get(variable) == "" else "set" if variable in env else "unset"
            found[str(name)] = KeySource(variable, state)
    return found


def _dotted(loc: tuple[Any, ...]) -> str:
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += f".{part}" if out else str(part)
    return out


def _interpolate(node: Any, path: str, source: str, env: Mapping[str, str]) -> Any:
    if isinstance(node, dict):
        return {
            key: _interpolate(value, f"{path}.{key}" if path else str(key), source, env)
            for key, value in node.items()
        }
    if isinstance(node, list):
        return [_interpolate(v, f"{path}[{i}]", source, env) for i, v in enumerate(node)]
    if isinstance(node, str) and "$" in node:

        def substitute(match: re.Match[str]) -> str:
            escaped, name, default = match.groups()
            if escaped:
                return match.group(0)[1:]
            if name in env:
                return env[name]
            if default is not None:
                return default
            raise ConfigError(
                source,
                path,
                f"environment variable {name} is not set (use ${{{name}:-}} for an optional value)",
            )

        return _VAR.sub(substitute, node)
    return node
