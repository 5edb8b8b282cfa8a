"""The `perpetuo` command: version, check-config, start-up refusing bad config, its help and
option checks, the administrator's password prompt, and what importing it costs."""

from __future__ import annotations

import json
import os
import subprocess
import sys

from click.testing import CliRunner

from perpetuo import __version__
from perpetuo.cli import cli
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


# Each group with its commands, in the order `--help` lists them.
GROUPS = {
    "": [
        "serve",
        "check-config",
        "version",
        "demo-upstream",
        "keys",
        "db",
        "admin",
        "secrets",
        "models",
    ],
    "keys": ["create", "list", "revoke"],
    "db": ["upgrade", "current"],
    "admin": ["create"],
    "secrets": ["new-key", "rotate"],
    "models": ["discover"],
}


def listed_commands(help_text: str) -> list[str]:
    section = help_text.split("Commands:\n", 1)[1]
    return [line.split()[0] for line in section.splitlines() if line[2:3].strip()]


def test_help_lists_every_command_in_order_with_its_whole_summary():
    result = run("--help")
    assert result.returncode == 0, result.stderr
    assert listed_commands(result.stdout) == GROUPS[""]
    assert "for testing applications." in result.stdout  # demo-upstream's, not cut short


def test_a_group_without_a_subcommand_prints_its_help_and_exits_2():
    for group, commands in GROUPS.items():
        result = run(*group.split())
        assert result.returncode == 2, result.stderr
        assert listed_commands(result.stdout) == commands, group


def test_out_of_range_ports_and_worker_counts_are_refused_before_anything_starts(tmp_path):
    for args in (["--port", "65536"], ["--port", "-1"], ["--workers", "0"]):
        result = run("serve", *args, env={"PERPETUO_DATA_DIR": str(tmp_path)})
        assert result.returncode == 2, args
        assert f"Invalid value for '{args[0]}'" in result.stderr
    assert not list(tmp_path.iterdir()), "the master key was not created"


def test_admin_create_prompts_twice_for_a_hidden_password(tmp_path):
    password = "correct-horse-battery-staple-42"
    result = CliRunner().invoke(
        cli,
        ["admin", "create", "--email", "root@example.com", "--name", "Root"],
        input=f"{password}\nnot-the-same\n{password}\n{password}\n",
        env={"PERPETUO_DATA_DIR": str(tmp_path), "PERPETUO_CONFIG": None},
    )
    assert result.exit_code == 0, result.output
    assert result.output.count("Password: ") == 2 and "Repeat for confirmation: " in result.output
    assert "do not match" in result.output
    assert "created super-administrator root@example.com" in result.output
    assert password not in result.output


def test_importing_the_command_line_loads_no_other_package_than_click():
    # `perpetuo serve` pays for this import before anything else: start-up time is a target.
    script = (
        "import sys; before = set(sys.modules); import perpetuo.cli; "
        "print(sorted({m.split('.')[0] for m in set(sys.modules) - before}"
        " - set(sys.stdlib_module_names)))"
    )
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "['click', 'perpetuo']"
