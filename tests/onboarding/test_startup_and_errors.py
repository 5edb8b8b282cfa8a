"""What a new user sees: the start-up banner (config, URLs, master key), a warning per
provider without a key naming its variable, and upstream failures that name the provider
and the cause without leaking secrets."""

from __future__ import annotations

import httpx

from tests.support.gateway import MASTER_KEY, GatewayProcess

SECRET = "sk-live-not-to-be-seen-0123456789"
CONFIG = {
    "providers": {
        "openai-main": {"type": "openai", "api_key": "${PERPETUO_TEST_OPENAI_KEY:-}"},
        "anthropic-main": {"type": "anthropic", "api_key": "${PERPETUO_TEST_ANTHROPIC_KEY:-}"},
        "down": {
            "type": "openai",
            "api_base": "http://127.0.0.1:9/v1",
            "api_key": SECRET,
            "timeouts": {"connect": 2},
        },
        "local": {"type": "vllm", "api_base": "http://127.0.0.1:9/v1"},  # needs no key
    },
    "models": {
        "gpt": {"deployments": [{"provider": "openai-main", "model": "gpt-4o-mini"}]},
        "claude": {"deployments": [{"provider": "anthropic-main", "model": "claude-sonnet-4-5"}]},
        "down": {"deployments": [{"provider": "down", "model": "gpt-4o-mini"}]},
    },
}


def ask(process, model):
    return httpx.post(
        f"{process.url}/v1/chat/completions",
        headers={"authorization": f"Bearer {MASTER_KEY}"},
        json={"model": model, "messages": [{"role": "user", "content": "hi"}]},
        timeout=30,
    )


def test_banner_warnings_and_named_failures(tmp_path):
    env = {"PERPETUO_TEST_ANTHROPIC_KEY": ""}  # set but empty; the OpenAI one is not set
    with GatewayProcess(CONFIG, tmp_path, env=env) as process:
        for _ in range(2):  # the second time too: a missing key is no reason to trip a breaker
            missing = ask(process, "gpt")
            assert missing.status_code == 503
            error = missing.json()["error"]
            assert error["code"] == "provider_not_configured"
            assert error["message"] == (
                "openai-main: no API key configured (PERPETUO_TEST_OPENAI_KEY is not set)."
            )
        empty = ask(process, "claude").json()["error"]["message"]
        assert (
            empty == "anthropic-main: no API key configured (PERPETUO_TEST_ANTHROPIC_KEY is empty)."
        )
        down = ask(process, "down")
        assert down.status_code == 503
        assert down.json()["error"]["message"] == "down: could not connect to 127.0.0.1:9."
        health = httpx.get(f"{process.url}/health")
        assert health.status_code == 200 and set(health.json()) == {"status"}
        log = process.log()
    assert f"config:     {process.config_path}" in log
    assert f"listening:  http://127.0.0.1:{process.port}" in log
    assert f"dashboard:  http://127.0.0.1:{process.port}/ui" in log
    assert "master key: from PERPETUO_MASTER_KEY" in log
    assert (
        "provider openai-main (openai) has no API key: PERPETUO_TEST_OPENAI_KEY is not set" in log
    )
    assert (
        "provider anthropic-main (anthropic) has no API key: PERPETUO_TEST_ANTHROPIC_KEY is empty"
        in log
    )
    assert "provider local" not in log and "provider down" not in log
    assert SECRET not in log
