"""Helpers for the cache and guardrail end-to-end tests: a gateway with an embedding alias
for semantic matching, workspaces with their own keys and settings, raw SSE reading."""

from __future__ import annotations

import itertools
import json
import time
from typing import Any

import httpx
import openai

from tests.conftest import full_config
from tests.support.gateway import MASTER_KEY, GatewayProcess

ADMIN = {"authorization": f"Bearer {MASTER_KEY}"}
_names = itertools.count()


def cache_config(mocks: Any) -> tuple[dict[str, Any], dict[str, str]]:
    config, env = full_config(mocks)
    config["models"]["semantic-embed"] = {
        "deployments": [{"provider": "openai-main", "model": "bow-embed-1"}]
    }
    config["cache"] = {
        "embedding_alias": "semantic-embed",
        "embedding_dimensions": 256,
        "max_ttl_seconds": 3600,
    }
    return config, env


class Tenant:
    """A workspace with settings and one API key, and an openai client using the key."""

    def __init__(self, gw: GatewayProcess, settings: dict[str, Any], **key_fields: Any) -> None:
        self.gw = gw
        response = httpx.post(
            f"{gw.url}/api/workspaces",
            headers=ADMIN,
            json={"name": f"t{next(_names)}", "settings": settings},
            timeout=30,
        )
        assert response.status_code == 201, response.text
        self.id = response.json()["data"]["id"]
        key = httpx.post(
            f"{gw.url}/api/workspaces/{self.id}/keys",
            headers=ADMIN,
            json={"name": "k", **key_fields},
            timeout=30,
        )
        assert key.status_code == 201, key.text
        self.key = key.json()["data"]["key"]
        self.key_id = key.json()["data"]["id"]
        self.client = openai.OpenAI(base_url=f"{gw.url}/v1", api_key=self.key, max_retries=0)

    @property
    def auth(self) -> dict[str, str]:
        return {"authorization": f"Bearer {self.key}"}

    def chat(self, body: dict[str, Any] | bytes, **headers: str) -> httpx.Response:
        content = body if isinstance(body, bytes) else json.dumps(body).encode()
        return httpx.post(
            f"{self.gw.url}/v1/chat/completions",
            headers={**self.auth, "content-type": "application/json", **headers},
            content=content,
            timeout=30,
        )

    def stream(self, body: dict[str, Any], **headers: str) -> tuple[httpx.Headers, list[Any]]:
        """The response headers and every SSE data payload (JSON, or the string [DONE])."""
        events: list[Any] = []
        with httpx.stream(
            "POST",
            f"{self.gw.url}/v1/chat/completions",
            headers={**self.auth, **headers},
            json={**body, "stream": True},
            timeout=30,
        ) as response:
            assert response.status_code == 200, response.read()
            raw = response.read().decode()
            response_headers = response.headers
        for block in raw.split("\n\n"):
            if not block.strip():
                continue
            assert block.startswith("data: "), block
            payload = block[len("data: ") :]
            events.append(payload if payload == "[DONE]" else json.loads(payload))
        return response_headers, events

    def admin(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        return httpx.request(
            method,
            f"{self.gw.url}/api/workspaces/{self.id}{path}",
            headers=ADMIN,
            timeout=30,
            **kwargs,
        )

    def logs(self, count: int, **filters: Any) -> list[dict[str, Any]]:
        deadline = time.monotonic() + 10
        data: list[dict[str, Any]] = []
        while time.monotonic() < deadline:
            data = self.admin("GET", "/logs", params={"limit": 200, **filters}).json()["data"]
            if len(data) >= count:
                return data
            time.sleep(0.1)
        raise AssertionError(f"only {len(data)} of {count} records arrived")


def until(check: Any, timeout: float = 5.0) -> Any:
    """Poll `check` until it returns something truthy (stores happen off the response path)."""
    deadline = time.monotonic() + timeout
    while True:
        result = check()
        if result or time.monotonic() > deadline:
            return result
        time.sleep(0.05)


def shape(events: list[Any]) -> list[Any]:
    """Chunks without what must differ between two answers (ids, timestamps)."""
    out = []
    for event in events:
        if isinstance(event, dict):
            event = {k: v for k, v in event.items() if k not in ("id", "created")}
        out.append(event)
    return out
