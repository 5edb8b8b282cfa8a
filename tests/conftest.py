"""Shared fixtures: mock upstreams (one per provider wire format) and a gateway process
configured with an alias for each, plus clients built on the official openai SDK."""

from __future__ import annotations

import importlib
import signal
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import openai
import pytest

from tests.mocks.server import MockUpstream
from tests.support.gateway import MASTER_KEY, GatewayProcess
from tests.support.services import PostgresServer, RedisServer

# Each module defines MOCK_NAME, MOCK_CLASS, ENV (provider keys) and config_fragment(mock).
MOCK_MODULES = ["tests.mocks.openai_mock", "tests.mocks.anthropic_mock", "tests.mocks.gemini_mock"]


@pytest.fixture(scope="session")
def mocks() -> Iterator[dict[str, MockUpstream]]:
    started: dict[str, MockUpstream] = {}
    for name in MOCK_MODULES:
        module = importlib.import_module(name)
        started[module.MOCK_NAME] = module.MOCK_CLASS().start()
    yield started
    for mock in started.values():
        mock.stop()


@pytest.fixture(autouse=True)
def _reset_mocks(request: pytest.FixtureRequest) -> None:
    if "mocks" in request.fixturenames:
        for mock in request.getfixturevalue("mocks").values():
            mock.reset()


def full_config(mocks: dict[str, MockUpstream]) -> tuple[dict[str, Any], dict[str, str]]:
    config: dict[str, Any] = {"providers": {}, "models": {}}
    env: dict[str, str] = {}
    for name in MOCK_MODULES:
        module = importlib.import_module(name)
        fragment = module.config_fragment(mocks[module.MOCK_NAME])
        config["providers"].update(fragment.get("providers", {}))
        config["models"].update(fragment.get("models", {}))
        env.update(module.ENV)
    return config, env


@pytest.fixture(scope="session")
def gateway(
    mocks: dict[str, MockUpstream], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[GatewayProcess]:
    config, env = full_config(mocks)
    process = GatewayProcess(config, tmp_path_factory.mktemp("gateway"), env=env).start()
    yield process
    process.stop()


@pytest.fixture
def openai_mock(mocks: dict[str, MockUpstream]) -> MockUpstream:
    return mocks["openai"]


@pytest.fixture
def client(gateway: GatewayProcess) -> openai.OpenAI:
    return openai.OpenAI(base_url=f"{gateway.url}/v1", api_key=MASTER_KEY, max_retries=0)


@pytest.fixture
def async_client(gateway: GatewayProcess) -> openai.AsyncOpenAI:
    return openai.AsyncOpenAI(base_url=f"{gateway.url}/v1", api_key=MASTER_KEY, max_retries=0)


@pytest.fixture
def workdir(tmp_path: Path) -> Path:
    return tmp_path


# -- real PostgreSQL and Redis (started once per session from the system binaries) -------------


@pytest.fixture(scope="session")
def postgres() -> Iterator[PostgresServer]:
    server = PostgresServer().start()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def redis_server() -> Iterator[RedisServer]:
    server = RedisServer().start()
    yield server
    server.stop()


@pytest.fixture
def own_redis() -> Iterator[RedisServer]:
    """A Redis of the test's own, which it may pause (SIGSTOP) or kill."""
    server = RedisServer().start()
    yield server
    if server.proc is not None and server.proc.poll() is None:
        server.proc.send_signal(signal.SIGCONT)
    server.stop()


_databases = iter(range(1, 1_000_000))


@pytest.fixture(params=["sqlite", "postgresql"])
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A fresh, empty database on each engine (tests using it run twice)."""
    if request.param == "sqlite":
        return f"sqlite+aiosqlite:///{tmp_path / 'store.db'}"
    server: PostgresServer = request.getfixturevalue("postgres")
    return server.create_database(f"test_{next(_databases)}")
