"""The mixed soak's clients: a weighted mix of requests on a few connections, the control-plane
events that run beside them (key rotations, configuration reloads), and a slow upstream whose
streams are long enough for a client to leave in the middle of one.

Every request is sent with the soak's virtual key, which is rotated during the run: a
request refused because of a rotation would show as an unexpected error.
"""

from __future__ import annotations

import asyncio
import json
import random
import time
from collections import Counter
from collections.abc import Callable
from typing import Any

from perpetuo.transport import URL, HTTPClient, Timeouts

TIMEOUTS = Timeouts(connect=10, first_byte=30, read=30, total=60)
# name: (weight, alias, path, stream); "broken" is expected to fail, "disconnect" to be left.
MIX: dict[str, tuple[int, str, str, bool]] = {
    "chat": (30, "gpt-4o-mini", "chat/completions", False),
    "stream": (20, "gpt-4o-mini", "chat/completions", True),
    "embeddings": (10, "embed", "embeddings", False),
    "cache": (12, "cached", "chat/completions", False),
    "guardrail": (10, "guarded", "chat/completions", False),
    "failover": (10, "flaky", "chat/completions", False),
    "broken": (2, "broken", "chat/completions", False),
    "disconnect": (6, "slow", "chat/completions", True),
}
CACHED_PROMPTS = [f"Repeat after me, number {i}." for i in range(16)]
PII = "Please email jane.doe@example.com or call +44 20 7946 0958 about card 4111 1111 1111 1111."


def body(scenario: str, rng: random.Random) -> bytes:
    _, alias, path, stream = MIX[scenario]
    if path == "embeddings":
        return json.dumps({"model": alias, "input": f"soak text {rng.random()}"}).encode()
    if scenario == "cache":
        content = rng.choice(CACHED_PROMPTS)
    elif scenario == "guardrail" and rng.random() < 0.5:
        content = PII
    else:
        content = f"Hello, soak request {rng.random()}"
    data: dict[str, Any] = {
        "model": alias,
        "messages": [{"role": "user", "content": content}],
        "stream": stream,
    }
    if stream:
        data["stream_options"] = {"include_usage": True}
    return json.dumps(data).encode()


class Traffic:
    """Request workers, the control loop and their tallies, against one gateway."""

    def __init__(self, base: str, master: str, key: str, key_id: str, seed: int = 15) -> None:
        self.base, self.master = base, master
        self.key, self.key_id = key, key_id
        self.client = HTTPClient()
        self.rng = random.Random(seed)
        self.sent: Counter[str] = Counter()
        self.errors: Counter[str] = Counter()  # unexpected: the soak fails on these
        self.expected_errors: Counter[str] = Counter()
        self.events: Counter[str] = Counter()
        self.error_samples: list[str] = []

    def headers(self, key: str) -> list[tuple[str, str]]:
        return [("content-type", "application/json"), ("authorization", f"Bearer {key}")]

    async def call(self, method: str, path: str, data: bytes, key: str) -> tuple[int, bytes]:
        url = URL.parse(f"{self.base}{path}")
        response = await self.client.request(method, url, self.headers(key), data, TIMEOUTS)
        try:
            return response.status, await response.read()
        finally:
            response.close()

    async def worker(self, deadline: float, every: float) -> None:
        """One connection's requests, one every `every` seconds (sooner after a slow one)."""
        names = list(MIX)
        weights = [MIX[n][0] for n in names]
        due = time.monotonic() + self.rng.random() * every  # the workers spread out
        while (now := time.monotonic()) < deadline:
            if due > now:
                await asyncio.sleep(due - now)
            due = max(due + every, now)  # behind schedule: carry on, no burst to catch up
            scenario = self.rng.choices(names, weights)[0]
            self.sent[scenario] += 1
            try:
                await self.one(scenario)
            except Exception as exc:  # a transport failure is a soak failure, not a crash
                self._unexpected(scenario, f"{type(exc).__name__}: {exc}")

    async def one(self, scenario: str) -> None:
        path = f"/v1/{MIX[scenario][2]}"
        data = body(scenario, self.rng)
        if scenario == "disconnect":
            await self.leave_mid_stream(path, data)
            return
        status, answer = await self.call("POST", path, data, self.key)
        if scenario == "broken" and status >= 500:
            self.expected_errors[scenario] += 1
        elif status != 200:
            self._unexpected(scenario, f"HTTP {status}: {answer[:200]!r}")

    async def leave_mid_stream(self, path: str, data: bytes) -> None:
        """Read the first events of a slow stream, then drop the connection."""
        url = URL.parse(f"{self.base}{path}")
        response = await self.client.request("POST", url, self.headers(self.key), data, TIMEOUTS)
        try:
            if response.status != 200:
                self._unexpected("disconnect", f"HTTP {response.status}")
                return
            seen = 0
            async for chunk in response.iter_bytes():
                seen += chunk.count(b"data: ")
                if seen >= 3:
                    break
            self.expected_errors["disconnect"] += 1
        finally:
            response.close()  # unfinished: the connection is aborted, not pooled

    def _unexpected(self, scenario: str, detail: str) -> None:
        self.errors[scenario] += 1
        if len(self.error_samples) < 20:
            self.error_samples.append(f"{scenario}: {detail}")

    async def control(self, deadline: float, reload: Callable[[], None]) -> None:
        """A key rotation every 60 s and a configuration reload every 45 s (the file changed
        by `reload` first), offset so that they do not coincide."""
        next_rotation, next_reload = time.monotonic() + 30, time.monotonic() + 45
        while time.monotonic() < deadline:
            await asyncio.sleep(1)
            now = time.monotonic()
            try:
                if now >= next_rotation:
                    next_rotation = now + 60
                    await self.rotate()
                if now >= next_reload:
                    next_reload = now + 45
                    reload()
                    status, answer = await self.call("POST", "/api/admin/reload", b"", self.master)
                    if status != 200:
                        raise RuntimeError(f"reload: HTTP {status} {answer[:200]!r}")
                    self.events["reloads"] += 1
            except Exception as exc:
                self._unexpected("control", f"{type(exc).__name__}: {exc}")

    async def rotate(self) -> None:
        path = f"/api/workspaces/ws_default/keys/{self.key_id}/rotate"
        status, answer = await self.call(
            "POST", path, json.dumps({"grace_seconds": 30}).encode(), self.master
        )
        if status != 200:
            raise RuntimeError(f"rotate: HTTP {status} {answer[:200]!r}")
        self.key = json.loads(answer)["data"]["key"]  # workers pick it up on their next call
        self.events["rotations"] += 1

    def totals(self) -> dict[str, Any]:
        return {
            "sent": sum(self.sent.values()),
            "sent_by_scenario": dict(self.sent),
            "unexpected_errors": sum(self.errors.values()),
            "unexpected_by_scenario": dict(self.errors),
            "expected_errors": dict(self.expected_errors),
            "events": dict(self.events),
            "error_samples": self.error_samples,
        }


async def create_key(base: str, master: str) -> tuple[str, str]:
    client = HTTPClient()
    url = URL.parse(f"{base}/api/workspaces/ws_default/keys")
    headers = [("content-type", "application/json"), ("authorization", f"Bearer {master}")]
    response = await client.request("POST", url, headers, b'{"name": "soak"}', TIMEOUTS)
    answer = await response.read()
    response.close()
    await client.aclose()
    if response.status != 201:
        raise RuntimeError(f"creating the soak's key: HTTP {response.status} {answer[:200]!r}")
    data = json.loads(answer)["data"]
    return data["key"], data["id"]


# -- the slow upstream ----------------------------------------------------------------------

_EVENT = (
    b'data: {"id":"chatcmpl-slow","object":"chat.completion.chunk","created":1,'
    b'"model":"slow","choices":[{"index":0,"delta":{"content":"word "},"finish_reason":null}]}'
    b"\n\n"
)
_LAST = (
    b'data: {"id":"chatcmpl-slow","object":"chat.completion.chunk","created":1,"model":"slow",'
    b'"choices":[],"usage":{"prompt_tokens":5,"completion_tokens":20,"total_tokens":25}}\n\n'
    b"data: [DONE]\n\n"
)
_HEAD = b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ntransfer-encoding: chunked\r\n\r\n"


def _chunk(data: bytes) -> bytes:
    return b"%x\r\n%s\r\n" % (len(data), data)


async def _slow_stream(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    """Keep-alive; every request gets a 20-event stream, one event every 50 ms."""
    try:
        while True:
            head = await reader.readuntil(b"\r\n\r\n")
            length = 0
            for line in head.split(b"\r\n"):
                name, _, value = line.partition(b":")
                if name.strip().lower() == b"content-length":
                    length = int(value)
            await reader.readexactly(length)
            writer.write(_HEAD)
            for _ in range(20):
                writer.write(_chunk(_EVENT))
                await writer.drain()
                await asyncio.sleep(0.05)
            writer.write(_chunk(_LAST) + b"0\r\n\r\n")
            await writer.drain()
    except (asyncio.IncompleteReadError, ConnectionError):
        pass  # the gateway left: what the soak's disconnects cause
    finally:
        writer.close()


async def slow_upstream(port: int) -> asyncio.Server:
    return await asyncio.start_server(_slow_stream, "127.0.0.1", port)
