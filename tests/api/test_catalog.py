"""The public model catalog and rankings (/api/catalog/*, /api/rankings/models), in-process:
off until the operator turns them on; the catalog's models, providers, prices, limits and
live health, without secrets or tenants' models; rankings from usage across workspaces as
aggregates only, for the platform's models used by enough workspaces."""

from __future__ import annotations

import time
from typing import Any

import pytest

from perpetuo.auth.credential_crypto import new_key_spec
from perpetuo.config import GatewayConfig
from perpetuo.metering.record import RequestRecord
from perpetuo.metering.writer import write_batch
from tests.support.admin_api import MASTER, admin_api, error_of

PROVIDERS = {
    "openai-main": {"type": "openai", "api_key": "sk-catalog-secret-1234"},
    "anthropic-main": {
        "type": "anthropic",
        "api_key": "sk-ant-catalog-secret",
        "api_base": "https://internal-proxy.example/anthropic",
    },
    "no-key": {"type": "openai"},
}
MODELS = {
    "chatty": {
        "description": "Two providers",
        "deployments": [
            {"provider": "openai-main", "model": "gpt-4o-mini", "price": {"input": 0.2}},
            {"provider": "anthropic-main", "model": "claude-haiku-4-5"},
        ],
    },
    "embed": {"deployments": [{"provider": "openai-main", "model": "text-embedding-3-small"}]},
    "lonely": {"deployments": [{"provider": "no-key", "model": "gpt-4o"}]},
}
PATHS = ("/api/catalog/models", "/api/catalog/providers", "/api/rankings/models")


def config(**public: Any) -> GatewayConfig:
    return GatewayConfig(providers=PROVIDERS, models=MODELS, public=public)


async def test_everything_is_off_by_default(tmp_path):
    async with admin_api(f"sqlite+aiosqlite:///{tmp_path / 'db'}", tmp_path, config()) as api:
        for path in PATHS:
            for headers in ({}, MASTER):
                response = await api.http.get(path, headers=headers)
                assert response.status_code == 404, path
                assert error_of(response)["code"] == "not_found"
                assert "chatty" not in response.text


async def test_the_catalog_lists_the_platforms_models(tmp_path, monkeypatch):
    monkeypatch.setenv("PERPETUO_ENCRYPTION_KEYS", new_key_spec("k1"))
    async with admin_api(
        f"sqlite+aiosqlite:///{tmp_path / 'db'}", tmp_path, config(catalog=True)
    ) as api:
        await _tenant_model(api)
        models = (await api.http.get("/api/catalog/models")).json()["data"]
        assert [m["id"] for m in models] == ["chatty", "embed", "lonely"]  # no tenant's model
        chatty, embed, lonely = models
        assert chatty["description"] == "Two providers" and "chat" in chatty["endpoints"]
        assert (chatty["input_modalities"], chatty["output_modalities"]) == (["text"], ["text"])
        assert (embed["input_modalities"], embed["output_modalities"]) == (["text"], ["embeddings"])
        # What every provider can take: the smaller window; the larger answer either can give.
        assert chatty["context_window"] == 128_000 and chatty["max_output_tokens"] == 64_000
        openai_dep, anthropic_dep = chatty["providers"]
        assert openai_dep["pricing"]["input"] == 0.2  # the deployment's own price wins
        assert openai_dep["pricing"]["output"] == 0.6  # the rest from the pricing catalog
        assert anthropic_dep["pricing"]["input"] == 1.0 and anthropic_dep["type"] == "anthropic"
        assert anthropic_dep["context_window"] == 200_000
        assert chatty["status"] == "up" and openai_dep["health"]["status"] == "up"
        assert lonely["status"] == "not_configured"
        text = (await api.http.get("/api/catalog/models")).text
        for secret in ("sk-catalog", "sk-ant", "internal-proxy", "api.openai.com"):
            assert secret not in text

        # Live health: an open circuit takes one provider down, the model is degraded.
        state = api.app.gateway.router.state
        state.health("openai-main/gpt-4o-mini").breaker.trip(state.clock())
        chatty = (await api.http.get("/api/catalog/models")).json()["data"][0]
        assert [p["health"]["status"] for p in chatty["providers"]] == ["down", "up"]
        assert chatty["status"] == "degraded"
        providers = {
            p["id"]: p for p in (await api.http.get("/api/catalog/providers")).json()["data"]
        }
        assert providers["openai-main"]["models"] == ["chatty", "embed"]
        assert providers["openai-main"]["status"] == "degraded"
        assert providers["anthropic-main"]["status"] == "up"
        assert providers["no-key"]["status"] == "not_configured"
        assert "api_key" not in str(providers) and "api_base" not in str(providers)


async def _tenant_model(api: Any) -> None:
    """A workspace's own model, which the public catalog must never show."""
    ws = (await api.http.post("/api/workspaces", headers=MASTER, json={"name": "t"})).json()
    base = f"/api/workspaces/{ws['data']['id']}"
    cred = await api.http.post(
        f"{base}/credentials",
        headers=MASTER,
        json={"name": "c", "provider_type": "openai", "api_key": "sk-tenant-1234"},
    )
    model = await api.http.post(
        f"{base}/models",
        headers=MASTER,
        json={
            "alias": "tenant-secret-model",
            "deployments": [{"credential_id": cred.json()["data"]["id"], "model": "gpt-4o"}],
        },
    )
    assert model.status_code == 201, model.text


def _record(n: int, workspace: str, alias: str, **fields: Any) -> RequestRecord:
    values: dict[str, Any] = {
        "prompt_tokens": 100,
        "completion_tokens": 50,
        "latency_ms": 200.0,
        "created_at": time.time(),
        **fields,
    }
    return RequestRecord(
        id=f"req_{n}",
        workspace_id=workspace,
        endpoint="chat",
        status=values.pop("status", 200),
        alias=alias,
        key_id=f"key_{workspace}",
        **values,
    )


async def test_rankings_are_aggregates_of_enough_workspaces(tmp_path):
    public = {"rankings": True, "rankings_min_workspaces": 3}
    async with admin_api(
        f"sqlite+aiosqlite:///{tmp_path / 'db'}", tmp_path, config(**public)
    ) as api:
        ten_days_ago = time.time() - 10 * 86400
        await write_batch(
            api.plane.db,
            [
                _record(1, "ws_a", "chatty"),
                _record(2, "ws_b", "chatty", prompt_tokens=300),
                _record(3, "ws_c", "chatty", status=502, error_code="upstream_error"),
                _record(4, "ws_d", "chatty", created_at=ten_days_ago),
                _record(5, "ws_a", "embed", prompt_tokens=10_000),  # one workspace only
                *(_record(6 + i, f"ws_{i}", "private-alias") for i in range(4)),  # a tenant's
            ],
        )
        ranked = (await api.http.get("/api/rankings/models")).json()
        assert ranked["window_days"] == 7
        (entry,) = ranked["data"]
        assert entry == {
            "rank": 1,
            "model": "chatty",
            "requests": 3,
            "prompt_tokens": 500,
            "completion_tokens": 150,
            "total_tokens": 650,
            "latency_p50_ms": entry["latency_p50_ms"],
            "error_rate": round(1 / 3, 4),
            "token_share": 1.0,
        }
        assert 100 <= entry["latency_p50_ms"] <= 250  # the histogram bucket of 200 ms
        text = str(ranked)
        assert not any(name in text for name in ("ws_a", "key_ws", "cost", "private-alias"))
        month = (await api.http.get("/api/rankings/models?days=30")).json()["data"]
        assert month[0]["requests"] == 4  # the older request is inside a 30-day window
        bad = await api.http.get("/api/rankings/models?days=0")
        assert bad.status_code == 422 and error_of(bad)["param"] == "days"


@pytest.mark.parametrize("minimum", [1, 2])
async def test_a_lower_threshold_ranks_more_models(tmp_path, minimum):
    public = {"rankings": True, "rankings_min_workspaces": minimum}
    async with admin_api(
        f"sqlite+aiosqlite:///{tmp_path / 'db'}", tmp_path, config(**public)
    ) as api:
        await write_batch(
            api.plane.db,
            [
                _record(1, "ws_a", "chatty"),
                _record(2, "ws_b", "chatty"),
                _record(3, "ws_a", "embed", prompt_tokens=10_000),
            ],
        )
        data = (await api.http.get("/api/rankings/models")).json()["data"]
        expected = ["embed", "chatty"] if minimum == 1 else ["chatty"]  # most tokens first
        assert [e["model"] for e in data] == expected
