"""The `perpetuo` command: version, check-config, and start-up refusing bad config."""

from __future__ import annotations

import json
import os
import subprocess
import sys

from perpetuo import __version__
from tests.config.test_loader import EXAMPLE


def run(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "perpetuo", *args],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, **(env or {})},
    )


def test_version():
    result = run("version")
    assert result.returncode == 0 and result.stdout.strip() == __version__


def test_check_config_prints_routing_table(tmp_path):
    path = tmp_path / "p.yaml"
    path.write_text(EXAMPLE)
    result = run("check-config", str(path), env={"OPENAI_API_KEY": "a", "ANTHROPIC_API_KEY": "b"})
    assert result.returncode == 0, result.stderr
    assert "2 aliases, 3 deployments" in result.stdout
    assert "claude-3-5-haiku-latest" in result.stdout
    as_json = run(
        "check-config", "--json", str(path), env={"OPENAI_API_KEY": "a", "ANTHROPIC_API_KEY": "b"}
    )
    rows = json.loads(as_json.stdout)
    assert [(r["alias"], r["order"], r["provider"]) for r in rows] == [
        ("gpt-4o-mini", 1, "openai-main"),
        ("gpt-4o-mini", 2, "anthropic-main"),
        ("text-embedding-3-small", 1, "openai-main"),
    ]
    assert "sk-" not in as_json.stdout


def test_serve_refuses_invalid_config(tmp_path):
    path = tmp_path / "bad.yaml"
    path.write_text(EXAMPLE)
    env = {k: v for k, v in os.environ.items() if k != "ANTHROPIC_API_KEY"}
    env |= {"OPENAI_API_KEY": "a", "PERPETUO_DATA_DIR": str(tmp_path)}
    result = subprocess.run(
        [sys.executable, "-m", "perpetuo", "serve", "--config", str(path)],
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
    )
    assert result.returncode == 2
    assert str(path) in result.stderr
    assert "providers.anthropic-main.api_key" in result.stderr
    assert "ANTHROPIC_API_KEY is not set" in result.stderr
    assert "Traceback" not in result.stderr
