"""The real gateway application in-process, driven through httpx for admin API tests."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from perpetuo.api.asgi import GatewayApp
from perpetuo.app import build_gateway
from perpetuo.config import GatewayConfig, Settings
from perpetuo.control.plane import ControlPlane
from perpetuo.store.migrate import upgrade
from tests.support.gateway import MASTER_KEY

MASTER = {"authorization": f"Bearer {MASTER_KEY}"}


def bearer(token: str) -> dict[str, str]:
    return {"authorization": f"Bearer {token}"}


@dataclass
class AdminAPI:
    app: GatewayApp
    http: httpx.AsyncClient

    @property
    def plane(self) -> ControlPlane:
        return self.app.gateway.plane

    def client(self, ip: str) -> httpx.AsyncClient:
        """Another client of the same application, calling from `ip`."""
        transport = httpx.ASGITransport(app=self.app, client=(ip, 40000))
        return httpx.AsyncClient(transport=transport, base_url="http://gateway")


@asynccontextmanager
async def admin_api(
    url: str, data_dir: Path, config: GatewayConfig | None = None, **settings: Any
) -> AsyncIterator[AdminAPI]:
    options: dict[str, Any] = {"redis_url": None, "signup": "open", **settings}
    gateway = build_gateway(
        Settings(database_url=url, data_dir=data_dir, master_key=MASTER_KEY, **options),
        config or GatewayConfig(),
    )
    await upgrade(gateway.plane.db)
    await gateway.start()
    app = GatewayApp(gateway)
    transport = httpx.ASGITransport(app=app, client=("127.0.0.1", 40000))
    try:
        async with httpx.AsyncClient(transport=transport, base_url="http://gateway") as http:
            yield AdminAPI(app, http)
    finally:
        await gateway.aclose()


def error_of(response: httpx.Response) -> dict[str, Any]:
    body = response.json()
    assert set(body) == {"error"}, body
    assert set(body["error"]) == {"message", "type", "param", "code"}, body
    return body["error"]
