"""Config files: interpolation, validation, and errors that name the file, field and problem."""

from __future__ import annotations

from pathlib import Path

import pytest

from perpetuo.config import ConfigError, load_config
from perpetuo.routing.table import RoutingTable

EXAMPLE = """
providers:                      # named upstream connections
  openai-main:
    type: openai
    api_base: http://127.0.0.1:9001/v1
    api_key: ${OPENAI_API_KEY}
  anthropic-main:
    type: anthropic
    api_base: http://127.0.0.1:9002
    api_key: ${ANTHROPIC_API_KEY}
models:                         # the aliases clients send
  gpt-4o-mini:
    deployments:
      - provider: openai-main
        model: gpt-4o-mini
      - provider: anthropic-main
        model: claude-3-5-haiku-latest
  text-embedding-3-small:
    deployments:
      - provider: openai-main
        model: text-embedding-3-small
"""

ENV = {"OPENAI_API_KEY": "sk-a", "ANTHROPIC_API_KEY": "sk-b"}


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "perpetuo.yaml"
    path.write_text(text)
    return path


def test_issue_example_loads_verbatim(tmp_path):
    config = load_config(write(tmp_path, EXAMPLE), env=ENV)
    assert config.providers["openai-main"].api_key.get_secret_value() == "sk-a"
    table = RoutingTable.build(config)
    alias = table.get("gpt-4o-mini")
    assert [d.id for d in alias.deployments] == [
        "openai-main/gpt-4o-mini",
        "anthropic-main/claude-3-5-haiku-latest",
    ]
    assert str(alias.deployments[1].target.base_url) == "http://127.0.0.1:9002/"


def test_missing_env_var_is_an_error_naming_field(tmp_path):
    path = write(tmp_path, EXAMPLE)
    with pytest.raises(ConfigError) as exc:
        load_config(path, env={"OPENAI_API_KEY": "x"})
    message = str(exc.value)
    assert str(path) in message
    assert "providers.anthropic-main.api_key" in message
    assert "ANTHROPIC_API_KEY is not set" in message


def test_defaults_and_escapes(tmp_path):
    text = EXAMPLE.replace("${ANTHROPIC_API_KEY}", "${ANTHROPIC_API_KEY:-fallback}")
    text = text.replace("http://127.0.0.1:9002", "$${NOT_A_VAR}")
    config = load_config(write(tmp_path, text), env={"OPENAI_API_KEY": "x"})
    assert config.providers["anthropic-main"].api_key.get_secret_value() == "fallback"
    assert config.providers["anthropic-main"].api_base == "${NOT_A_VAR}"


@pytest.mark.parametrize(
    ("text", "field", "problem"),
    [
        (
            "providers: {p: {type: openai, api_key: x}}\nmodels: {a: {deployments: [{provider: q, model: m}]}}",
            "models.a.deployments[0].provider",
            "unknown provider 'q'",
        ),
        ("providers: {p: {type: openai, colour: red}}", "providers.p.colour", "unknown field"),
        ("models: {a: {deployments: []}}", "models.a.deployments", "at least 1"),
        (
            "providers: {p: {type: openai}}\nmodels: {a: {deployments: [{provider: p, model: m, weight: -1}]}}",
            "models.a.deployments[0].weight",
            "greater than 0",
        ),
        ("server: {port: 99999}", "server.port", "less than 65536"),
        (
            "providers: {p: {type: openai}}\nmodels: {a: {deployments: [{provider: p, model: m}], fallbacks: [zzz]}}",
            "models.a.fallbacks",
            "unknown alias 'zzz'",
        ),
        ("- just\n- a list", None, "top level must be a mapping"),
        ("providers: [unclosed", "line", "invalid YAML"),
    ],
)
def test_invalid_files(tmp_path, text, field, problem):
    path = write(tmp_path, text)
    with pytest.raises(ConfigError) as exc:
        load_config(path, env={})
    message = str(exc.value)
    assert message.startswith(str(path))
    if field:
        assert field in message
    assert problem in message


def test_every_problem_of_a_file_is_named_at_once(tmp_path):
    """One edit can fix them all: not the first problem and a count."""
    text = (
        "providers: {p: {type: openai, colour: red}, q: {type: openai, timeout: -5}}\n"
        "server: {port: 99999}\n"
        "models: {a: {deployments: [{provider: p, model: m, weight: -1}]}}"
    )
    with pytest.raises(ConfigError) as exc:
        load_config(write(tmp_path, text), env={})
    named = [exc.value.field, *(other.split(": ")[0] for other in exc.value.others)]
    assert sorted(named) == [
        "models.a.deployments[0].weight",
        "providers.p.colour",
        "providers.q.timeout",
        "server.port",
    ]
    message = str(exc.value)
    for field in ("providers.p.colour", "providers.q.timeout", "server.port", "weight"):
        assert field in message
    assert message.count("\n") == 3


def test_routing_table_rejects_unknown_type_and_missing_base(tmp_path):
    bad_type = load_config(write(tmp_path, "providers: {p: {type: nosuch}}"), env={})
    with pytest.raises(ConfigError) as exc:
        RoutingTable.build(bad_type, "f.yaml")
    assert "providers.p.type" in str(exc.value) and "unknown provider type" in str(exc.value)
    no_base = load_config(
        write(
            tmp_path,
            "providers: {p: {type: vllm}}\nmodels: {a: {deployments: [{provider: p, model: m}]}}",
        ),
        env={},
    )
    with pytest.raises(ConfigError) as exc:
        RoutingTable.build(no_base, "f.yaml")
    assert "models.a.deployments[0]" in str(exc.value) and "api_base is required" in str(exc.value)


def test_missing_file(tmp_path):
    with pytest.raises(ConfigError) as exc:
        load_config(tmp_path / "absent.yaml")
    assert "cannot read file" in str(exc.value)


def test_shipped_example_config_starts_without_any_credentials():
    example = Path(__file__).resolve().parents[2] / "examples" / "perpetuo.example.yaml"
    table = RoutingTable.build(load_config(example, env={}), str(example))
    assert {"gpt-4o-mini", "claude-sonnet", "gemini-flash", "text-embedding-3-small"} <= set(
        table.aliases
    )
    assert all(d.target.api_key is None for a in table.aliases.values() for d in a.deployments)
