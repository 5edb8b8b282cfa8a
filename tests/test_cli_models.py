"""`perpetuo models discover PROVIDER` against mock providers: the YAML it prints is a models
section the config accepts as it is, with the catalog's prices; JSON for scripts; clear
failures for an unknown provider, a refused key and an unreachable host."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from tests.mocks.cohere_mock import CohereMock
from tests.mocks.compat_mock import CompatMock


@pytest.fixture(scope="module")
def upstreams() -> Iterator[tuple[CohereMock, CompatMock]]:
    cohere, compat = CohereMock("co-key").start(), CompatMock().start()
    yield cohere, compat
    cohere.stop()
    compat.stop()


@pytest.fixture
def config(upstreams, tmp_path) -> Path:
    cohere, compat = upstreams
    providers = {
        "cohere-main": {"type": "cohere", "api_base": cohere.url, "api_key": "co-key"},
        "cohere-badkey": {"type": "cohere", "api_base": cohere.url, "api_key": "wrong"},
        "openrouter-main": {
            "type": "openrouter",
            "api_base": compat.base("openrouter"),
            "api_key": "host-key",
        },
        "together-main": {
            "type": "together",
            "api_base": compat.base("together"),
            "api_key": "host-key",
        },
        "gone": {
            "type": "openai",
            "api_base": "http://127.0.0.1:9/v1",
            "api_key": "k",
            "timeouts": {"connect": 2},
        },
    }
    path = tmp_path / "perpetuo.yaml"
    path.write_text(yaml.safe_dump({"providers": providers}))
    return path


def perpetuo(*args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k.lower() not in ("http_proxy", "https_proxy")}
    return subprocess.run(
        [sys.executable, "-m", "perpetuo", *args],
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
    )


def test_yaml_pasted_into_the_config_checks(config, tmp_path):
    result = perpetuo("models", "discover", "cohere-main", "--config", str(config))
    assert result.returncode == 0, result.stderr
    assert "4 models of provider cohere-main" in result.stderr
    assert "command-a-03-2025:  # $2.5 in, $10 out per 1M tokens; 256,000-token context" in (
        result.stdout
    )
    whole = yaml.safe_load(config.read_text()) | yaml.safe_load(result.stdout)
    pasted = tmp_path / "pasted.yaml"
    pasted.write_text(yaml.safe_dump(whole))
    checked = perpetuo("check-config", "--json", str(pasted))
    assert checked.returncode == 0, checked.stderr
    rows = {row["alias"]: row for row in json.loads(checked.stdout)}
    assert set(rows) == {"command-a-03-2025", "command-r7b-12-2024", "embed-v4.0", "rerank-v3.5"}
    assert rows["embed-v4.0"]["model"] == "embed-v4.0"


def test_json_with_list_prices_and_a_filter(config):
    result = perpetuo(
        "models", "discover", "openrouter-main", "--config", str(config), "--json", "-m", "gpt"
    )
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == [
        {
            "alias": "gpt-4o-mini",
            "provider": "openrouter-main",
            "model": "openai/gpt-4o-mini",
            "endpoints": [],
            "input_price": 0.15,
            "output_price": 0.6,
            "max_output_tokens": 16384,
            "context_window": 128000,
        }
    ]
    together = perpetuo("models", "discover", "together-main", "--config", str(config), "--json")
    proposed = json.loads(together.stdout)[0]
    assert (proposed["model"], proposed["input_price"]) == (
        "meta-llama/Llama-3.3-70B-Instruct-Turbo",
        0.88,  # Together's own catalog entry, from its bare-list answer
    )


@pytest.mark.parametrize(
    ("provider", "code", "says"),
    [
        ("nobody", 2, "no provider 'nobody' in the config"),
        ("cohere-badkey", 1, "answered 401: invalid api token"),
        ("gone", 1, "could not be reached"),
    ],
)
def test_failures_say_what_went_wrong(config, provider, code, says):
    result = perpetuo("models", "discover", provider, "--config", str(config))
    assert result.returncode == code
    assert says in result.stderr
    assert "wrong" not in result.stderr and result.stdout == ""
