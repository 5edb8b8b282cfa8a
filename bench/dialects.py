"""Dialect scenarios (`./dev bench --dialects`): Responses and Messages clients on both lanes,
measured in the same run and gateway process as chat, at the same concurrency levels.

- pass-through: the client's dialect is the deployment's format (Responses to an `openai`
  deployment serving /v1/responses, Messages to an `anthropic` one): the body is forwarded,
  the answer's bytes come back as sent and are read on the side for metering.
- translated: Responses to an `openai-compatible` deployment (chat completions only) and
  Messages to an `openai` one: request and answer go through the chat form.

Each dialect is also called directly on the mock, as for chat. Each scenario runs twice (A B
C D D C B A) and its figures are the mean of the two; the CPU ratio is against chat at the
same mode and concurrency, measured just before and just after (their mean).
"""

from __future__ import annotations

import urllib.request
from collections.abc import Callable
from typing import Any

from bench.mock_dialects import SHORT
from bench.system import process_cpu_seconds

PATHS = {"chat": "chat/completions", "responses": "responses", "messages": "messages"}
# (name, dialect, alias): the aliases are in config() below.
SCENARIOS = (
    ("responses pass-through", "responses", "gpt-4o-mini"),
    ("responses translated", "responses", "compat-mini"),
    ("messages pass-through", "messages", "claude-mini"),
    ("messages translated", "messages", "gpt-4o-mini"),
)
TERMINAL = {"responses": b"event: response.completed", "messages": b"event: message_stop"}

# (url, concurrency, stream, key, alias, dialect) -> the load generator's result
Loadgen = Callable[[str, int, bool, str, str, str], dict[str, Any]]


def config(mock_port: int) -> dict[str, Any]:
    """Providers and aliases merged into the benchmark's gateway config (`mock`, the
    `openai` provider, and `gpt-4o-mini` over it are the main run's)."""
    base = f"http://127.0.0.1:{mock_port}"
    return {
        "providers": {
            "mock-compat": {"type": "openai-compatible", "api_base": f"{base}/v1", "api_key": "sk"},
            "mock-anthropic": {"type": "anthropic", "api_base": base, "api_key": "sk-ant"},
        },
        "models": {
            "compat-mini": {"deployments": [{"provider": "mock-compat", "model": "gpt-4o-mini"}]},
            "claude-mini": {"deployments": [{"provider": "mock-anthropic", "model": "claude-x"}]},
        },
    }


def check(gateway: str, key: str) -> None:
    """One request per scenario and mode before measuring: a lane that answers 200 with an
    error event, or the wrong answer, must not be timed as if it worked."""
    from bench.loadgen import auth_headers, body

    for name, dialect, alias in SCENARIOS:
        for stream in (False, True):
            request = urllib.request.Request(
                f"{gateway}/{PATHS[dialect]}",
                data=body(stream, alias, dialect),
                headers={"content-type": "application/json", **dict(auth_headers(key, dialect))},
            )
            with urllib.request.urlopen(request, timeout=10) as response:
                data = response.read()
            if stream:
                ok = TERMINAL[dialect] in data and b"event: error" not in data
                ok = ok and b"event: response.failed" not in data
            else:
                ok = SHORT.encode() in data
            if not ok:
                raise RuntimeError(f"{name} ({'stream' if stream else 'json'}): {data[:400]!r}")


def run_cell(
    pid: int,
    stream: bool,
    concurrency: int,
    urls: tuple[str, str],
    key: str,
    duration: float,
    loadgen: Loadgen,
) -> list[dict[str, Any]]:
    """The dialect rows of one (mode, concurrency) cell: each dialect once on the mock
    directly; each scenario twice through the gateway, in the order A B C D D C B A so that
    the machine getting faster or slower favours none, and the two runs averaged. `urls`:
    the mock's and the gateway's base URLs (ending in /v1)."""
    mock, gateway = urls
    direct = {
        d: loadgen(f"{mock}/{PATHS[d]}", concurrency, stream, "", "gpt-4o-mini", d)
        for d in ("responses", "messages")
    }
    runs: dict[str, list[tuple[dict[str, Any], float]]] = {}
    for name, dialect, alias in (*SCENARIOS, *reversed(SCENARIOS)):
        before = process_cpu_seconds(pid)
        via = loadgen(f"{gateway}/{PATHS[dialect]}", concurrency, stream, key, alias, dialect)
        used = process_cpu_seconds(pid) - before
        served = via["requests"] * (1 + 1 / duration)  # the warm-up second is served too
        runs.setdefault(name, []).append((via, used * 1000 / served if served else 0.0))
    return [
        {
            "scenario": name,
            "mode": "stream" if stream else "json",
            "concurrency": concurrency,
            "direct": direct[dialect],
            "gateway": _mean([via for via, _ in runs[name]]),
            "gateway_cpu_ms_per_request": sum(cpu for _, cpu in runs[name]) / len(runs[name]),
        }
        for name, dialect, _ in SCENARIOS
    ]


def _mean(results: list[dict[str, Any]]) -> dict[str, Any]:
    """Load-generator results averaged (errors and requests summed)."""
    out: dict[str, Any] = {}
    for field, value in results[0].items():
        values = [r[field] for r in results if r.get(field) is not None]
        if field in ("errors", "requests"):
            out[field] = sum(values)
        elif isinstance(value, int | float) and values:
            out[field] = sum(values) / len(values)
        else:
            out[field] = value
    return out


def render(rows: list[dict[str, Any]], chat_cpu: dict[tuple[str, int], float]) -> list[str]:
    """The dialect table; `chat_cpu[(mode, concurrency)]` is chat's CPU ms per request."""
    lines = [
        "Dialect scenarios (`--dialects`): Responses and Messages clients through the same "
        "gateway process, each the mean of two runs (A B C D D C B A); CPU ratio against chat "
        "at the same mode and concurrency (the mean of chat measured just before and just "
        "after). Targets: pass-through ≤ 1.2, translated ≤ 1.5.",
        "",
        "| scenario | mode | conc. | direct rps | gateway rps | gateway p50 ms | added p50 ms "
        "| gateway TTFT p50 ms | gateway CPU ms/req | chat CPU ms/req | CPU ratio | errors |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for row in rows:
        direct, via = row["direct"], row["gateway"]
        cpu = row["gateway_cpu_ms_per_request"]
        chat = chat_cpu.get((row["mode"], row["concurrency"]))
        ratio = f"{cpu / chat:.2f}" if cpu and chat else "-"
        ttft = via.get("ttft_p50_ms")
        lines.append(
            f"| {row['scenario']} | {row['mode']} | {row['concurrency']} | {direct['rps']:.0f} "
            f"| {via['rps']:.0f} | {via['p50_ms']:.3f} | {via['p50_ms'] - direct['p50_ms']:.3f} "
            f"| {'-' if ttft is None else f'{ttft:.3f}'} | {cpu:.3f} "
            f"| {'-' if chat is None else f'{chat:.3f}'} | {ratio} | {via['errors']} |"
        )
    return lines
