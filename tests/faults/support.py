"""What the fault tests share: client load that runs while a test breaks something, and the
signals that pause, resume or kill PostgreSQL and Redis."""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import signal
import subprocess
import threading
import time
from dataclasses import dataclass, field
from typing import Any

import httpx

from tests.support.gateway import MASTER_KEY, GatewayProcess
from tests.support.services import PostgresServer, RedisServer, _pg_bin

ADMIN = {"authorization": f"Bearer {MASTER_KEY}"}
CHAT = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "fault"}]}


@dataclass(frozen=True, slots=True)
class Outcome:
    started: float  # time.monotonic()
    seconds: float
    status: int  # 0: no HTTP answer at all (the connection failed)
    code: str | None  # the error body's `code`
    request_id: str | None

    @property
    def ended(self) -> float:
        return self.started + self.seconds


@dataclass
class Load:
    """`concurrency` clients sending chat requests back to back (each pausing `gap`
    seconds) to `url` with `key`, in a thread of their own, until stop()."""

    url: str
    key: str
    concurrency: int = 4
    gap: float = 0.01
    body: dict[str, Any] = field(default_factory=lambda: dict(CHAT))
    outcomes: list[Outcome] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._stop = threading.Event()
        self._thread = threading.Thread(target=lambda: asyncio.run(self._run()), daemon=True)

    def start(self) -> Load:
        self._thread.start()
        return self

    def stop(self) -> list[Outcome]:
        self._stop.set()
        self._thread.join(60)
        assert not self._thread.is_alive(), "a client request never ended"
        return self.outcomes

    def between(self, start: float, end: float) -> list[Outcome]:
        """The requests sent in [start, end)."""
        return [o for o in self.outcomes if start <= o.started < end]

    async def _run(self) -> None:
        limits = httpx.Limits(max_connections=self.concurrency)
        headers = {"authorization": f"Bearer {self.key}"}
        async with httpx.AsyncClient(timeout=60, limits=limits, headers=headers) as http:
            await asyncio.gather(*(self._client(http) for _ in range(self.concurrency)))

    async def _client(self, http: httpx.AsyncClient) -> None:
        while not self._stop.is_set():
            started = time.monotonic()
            try:
                response = await http.post(f"{self.url}/v1/chat/completions", json=self.body)
                status, code = response.status_code, None
                if status != 200:
                    code = response.json()["error"]["code"]
                request_id = response.headers.get("x-request-id")
            except httpx.HTTPError:
                status, code, request_id = 0, None, None
            self.outcomes.append(
                Outcome(started, time.monotonic() - started, status, code, request_id)
            )
            await asyncio.sleep(self.gap)


def wait_for(check: Any, timeout: float, what: str, every: float = 0.05) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(every)
    raise AssertionError(f"{what}: not within {timeout} s")


# -- Redis --------------------------------------------------------------------------------------


def redis_cli(server: RedisServer, *args: str) -> str:
    done = subprocess.run(
        ["redis-cli", "-p", str(server.port), *args], capture_output=True, text=True, timeout=10
    )
    return done.stdout.strip()


def metric(gateway: GatewayProcess, name: str, labels: str = "") -> float:
    """A metric's value from /metrics: the first series of `name`, or the one with exactly
    these `labels` (e.g. '{checked="lease"}'); 0 when absent."""
    text = httpx.get(f"{gateway.url}/metrics", timeout=10).text
    series = re.escape(labels) if labels else "(?:{[^}]*})?"
    found = re.search(rf"^{name}{series} ([0-9.e+]+)$", text, re.MULTILINE)
    return float(found.group(1)) if found else 0.0


def script_calls(server: RedisServer) -> int:
    """Scripts Redis has run (each admission or settlement batch is one)."""
    for line in redis_cli(server, "info", "commandstats").splitlines():
        if line.startswith("cmdstat_evalsha:"):
            return int(line.split("calls=", 1)[1].split(",", 1)[0])
    return 0


def kill_and_restart_redis(server: RedisServer) -> None:
    """kill -9, then a new empty server on the same port (what a crashed Redis comes back as)."""
    assert server.proc is not None
    server.proc.send_signal(signal.SIGKILL)
    server.proc.wait(10)
    server.start()


# -- PostgreSQL ---------------------------------------------------------------------------------


def postmaster_pid(server: PostgresServer) -> int:
    """The postmaster itself (the child we started may be `runuser` in front of it)."""
    return int((server.data / "postmaster.pid").read_text().split()[0])


def kill_postgres(server: PostgresServer) -> None:
    """kill -9 the postmaster and every backend, as a crash of the machine's database would."""
    pid = postmaster_pid(server)
    children = subprocess.run(["pgrep", "-P", str(pid)], capture_output=True, text=True)
    for child in [pid, *(int(p) for p in children.stdout.split())]:
        with contextlib.suppress(ProcessLookupError):
            os.kill(child, signal.SIGKILL)
    assert server.proc is not None
    server.proc.wait(20)
    (server.data / "postmaster.pid").unlink(missing_ok=True)


def psql(server: PostgresServer, database: str, query: str) -> str:
    done = subprocess.run(
        [
            *(_pg_bin("psql"), "-h", "127.0.0.1", "-p", str(server.port), "-U", "postgres"),
            *("-d", database, "-At", "-c", query),
        ],
        capture_output=True,
        text=True,
        check=True,
        timeout=30,
    )
    return done.stdout.strip()


# -- the gateway's admin API ----------------------------------------------------------------------


def create_key(gateway: GatewayProcess, **fields: Any) -> dict[str, Any]:
    response = httpx.post(
        f"{gateway.url}/api/workspaces/ws_default/keys",
        headers=ADMIN,
        json={"name": "faults", **fields},
        timeout=30,
    )
    assert response.status_code == 201, response.text
    return response.json()["data"]


def answered(outcomes: list[Outcome]) -> list[Outcome]:
    return [o for o in outcomes if o.status == 200]
