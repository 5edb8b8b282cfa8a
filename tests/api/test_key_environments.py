"""API key environments end to end: prefixes per environment (live, test and the operator's
own), test-only environments refused on real models with 403 and allowed on test ones (a
model marked test, one on a test provider, one on the demo provider), and the config's
checks of what it names."""

from __future__ import annotations

import httpx
import openai
import pytest

from perpetuo.auth.api_keys import generate, looks_like_key
from perpetuo.config.loader import ConfigError
from perpetuo.config.model import GatewayConfig
from perpetuo.routing.table import RoutingTable
from tests.conftest import full_config
from tests.support.gateway import MASTER_KEY, GatewayProcess

ADMIN = {"authorization": f"Bearer {MASTER_KEY}"}
HELLO = [{"role": "user", "content": "hello"}]
KEYS = "/api/workspaces/ws_default/keys"


@pytest.fixture(scope="module")
def gw(mocks, tmp_path_factory):
    config, env = full_config(mocks)
    main = config["providers"]["openai-main"]
    config["providers"]["openai-sandbox"] = {**main, "test": True}
    config["providers"]["sandbox"] = {"type": "demo"}
    config["models"].update(
        {
            "marked-test": {
                "test": True,
                "deployments": [{"provider": "openai-main", "model": "gpt-4o-mini"}],
            },
            "sandbox-gpt": {
                "deployments": [{"provider": "openai-sandbox", "model": "gpt-4o-mini"}]
            },
            "demo-chat": {
                "endpoints": ["chat"],
                "deployments": [{"provider": "sandbox", "model": "m"}],
            },
        }
    )
    config["api_keys"] = {"environments": ["staging", "dev"], "test_only": ["test", "dev"]}
    process = GatewayProcess(config, tmp_path_factory.mktemp("key-envs"), env=env).start()
    yield process
    process.stop()


def create_key(gateway: GatewayProcess, **fields) -> dict:
    response = httpx.post(
        f"{gateway.url}{KEYS}", headers=ADMIN, json={"name": "env", **fields}, timeout=30
    )
    assert response.status_code == 201, response.text
    return response.json()["data"]


def sdk(gateway: GatewayProcess, key: str) -> openai.OpenAI:
    return openai.OpenAI(base_url=f"{gateway.url}/v1", api_key=key, max_retries=0)


@pytest.mark.parametrize("environment", ["live", "test", "staging", "dev"])
def test_each_environment_gives_its_prefix(gw, environment):
    created = create_key(gw, environment=environment)
    assert created["key"].startswith(f"pk_{environment}_")
    assert created["prefix"].startswith(f"pk_{environment}_") and created["environment"] == (
        environment
    )
    rotated = httpx.post(f"{gw.url}{KEYS}/{created['id']}/rotate", headers=ADMIN, json={})
    assert rotated.json()["data"]["key"].startswith(f"pk_{environment}_")


def test_a_staging_key_is_not_restricted(gw):
    key = create_key(gw, environment="staging")["key"]
    reply = sdk(gw, key).chat.completions.create(model="gpt-4o-mini", messages=HELLO)
    assert reply.choices[0].message.content == "Echo: hello"


@pytest.mark.parametrize("environment", ["test", "dev"])
def test_test_only_keys_are_refused_real_models_with_403(gw, environment):
    client = sdk(gw, create_key(gw, environment=environment)["key"])
    with pytest.raises(openai.PermissionDeniedError) as exc:
        client.chat.completions.create(model="gpt-4o-mini", messages=HELLO)
    assert exc.value.code == "test_key_not_allowed"
    body = exc.value.response.json()["error"]
    assert set(body) == {"message", "type", "param", "code"}
    assert "gpt-4o-mini" in body["message"] and environment in body["message"]
    with pytest.raises(openai.PermissionDeniedError):
        client.embeddings.create(model="text-embedding-3-small", input="x")


def test_test_only_keys_use_test_models(gw):
    client = sdk(gw, create_key(gw, environment="test")["key"])
    for model in ("marked-test", "sandbox-gpt"):
        reply = client.chat.completions.create(model=model, messages=HELLO)
        assert reply.choices[0].message.content == "Echo: hello"
    assert client.chat.completions.create(model="demo-chat", messages=HELLO).choices


def test_test_only_keys_list_only_test_models(gw):
    listed = {m.id for m in sdk(gw, create_key(gw, environment="test")["key"]).models.list()}
    assert listed == {"marked-test", "sandbox-gpt", "demo-chat"}
    live = {m.id for m in sdk(gw, create_key(gw)["key"]).models.list()}
    assert {"gpt-4o-mini", "marked-test"} <= live


def test_live_keys_use_every_model(gw):
    client = sdk(gw, create_key(gw)["key"])
    for model in ("gpt-4o-mini", "marked-test", "sandbox-gpt"):
        client.chat.completions.create(model=model, messages=HELLO)


def test_an_unknown_environment_is_refused_naming_the_field(gw):
    response = httpx.post(
        f"{gw.url}{KEYS}", headers=ADMIN, json={"name": "x", "environment": "prod"}
    )
    assert response.status_code == 422, response.text
    error = response.json()["error"]
    assert error["param"] == "environment" and "staging" in error["message"]


# -- without a server -----------------------------------------------------------------------


def test_key_shapes_the_lookup_accepts():
    for environment in ("live", "test", "staging", "dev"):
        assert looks_like_key(generate(environment).plaintext)
    assert not looks_like_key("pk_" + "x" * 60)
    assert not looks_like_key("sk_live_" + "x" * 60)
    with pytest.raises(ValueError):
        generate("Prod")


@pytest.mark.parametrize(
    ("section", "problem"),
    [
        ({"environments": ["production"]}, "2 to 8"),
        ({"environments": ["master"]}, "master"),
        ({"test_only": ["qa"]}, "unknown environment 'qa'"),
    ],
)
def test_the_config_checks_environments(section, problem):
    with pytest.raises(ValueError, match=problem):
        GatewayConfig.model_validate({"api_keys": section})


def test_a_test_alias_falls_back_only_to_test_aliases():
    config = GatewayConfig.model_validate(
        {
            "providers": {"real": {"type": "openai", "api_key": "sk-x"}, "demo": {"type": "demo"}},
            "models": {
                "real": {"deployments": [{"provider": "real", "model": "gpt-4o-mini"}]},
                "sandbox": {
                    "deployments": [{"provider": "demo", "model": "m"}],
                    "fallbacks": ["real"],
                },
            },
        }
    )
    # Served by the demo provider, but falling back to a real one: not a test alias.
    table = RoutingTable.build(config)
    assert not table.aliases["sandbox"].test and not table.aliases["real"].test
    marked = config.models["sandbox"].model_copy(update={"test": True})
    with pytest.raises(ConfigError, match=r"models\.sandbox\.fallbacks"):
        RoutingTable.build(
            config.model_copy(update={"models": {**config.models, "sandbox": marked}})
        )
    config.models["real"] = config.models["real"].model_copy(update={"test": True})
    table = RoutingTable.build(config)
    assert table.aliases["sandbox"].test and table.aliases["real"].test
