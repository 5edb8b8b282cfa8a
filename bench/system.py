"""Process measurements from /proc and small helpers for the benchmark."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Any


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_http(url: str, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(url, timeout=1) as response:
                if response.status == 200:
                    return
        except OSError:
            pass
        time.sleep(0.005)
    raise RuntimeError(f"{url} did not answer within {timeout}s")


def process_cpu_seconds(pid: int) -> float:
    """User plus system CPU time of a process, all its threads included."""
    with open(f"/proc/{pid}/stat") as handle:
        fields = handle.read().rsplit(")", 1)[1].split()
    ticks = os.sysconf("SC_CLK_TCK")
    return (int(fields[11]) + int(fields[12])) / ticks


def tree_cpu_seconds(pid: int) -> float:
    """CPU time of a process and of its children (a server's workers, a database's backends),
    those alive now and those it has reaped (counted in its own stat), so a backend that ends
    between two readings keeps its share."""
    ticks = os.sysconf("SC_CLK_TCK")
    with open(f"/proc/{pid}/stat") as handle:
        fields = handle.read().rsplit(")", 1)[1].split()
    total = sum(int(f) for f in fields[11:15]) / ticks  # utime, stime, cutime, cstime
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as handle:
                child = handle.read().rsplit(")", 1)[1].split()
        except OSError:
            continue  # ended meanwhile
        if int(child[1]) == pid:
            total += tree_cpu_seconds(int(entry))
    return total


def process_memory_kib(pid: int) -> dict[str, int]:
    values: dict[str, int] = {}
    with open(f"/proc/{pid}/status") as handle:
        for line in handle:
            name, _, rest = line.partition(":")
            if name in ("VmRSS", "VmHWM"):
                values[name] = int(rest.split()[0])
    return values


ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def mock_config(port: int) -> dict[str, Any]:
    """A gateway config with one alias, gpt-4o-mini, served by the bench mock on `port`."""
    return {
        "providers": {
            "mock": {
                "type": "openai",
                "api_base": f"http://127.0.0.1:{port}/v1",
                "api_key": "sk-bench",
            }
        },
        "models": {"gpt-4o-mini": {"deployments": [{"provider": "mock", "model": "gpt-4o-mini"}]}},
    }


def start_mock(port: int, fail_rate: float = 0.0) -> subprocess.Popen[str]:
    """The bench mock upstream on `port`, returned once it says it is ready."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "bench.mock_upstream", str(port), "--fail-rate", str(fail_rate)],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None
    if proc.stdout.readline().strip() != "ready":
        raise RuntimeError("mock upstream did not start")
    return proc


def start_gateway_process(
    config_path: Any,
    port: int,
    env: dict[str, str],
    log_path: Any = None,
    args: tuple[str, ...] = (),
    tree: Path | None = None,
) -> subprocess.Popen[bytes]:
    """`perpetuo serve` on `port` with `env` over this environment (and `args`, e.g.
    `--workers 2`), returned once ready; its stderr goes to `log_path` (appended) or nowhere.
    `tree`: another checkout with its own `.venv`, run from its own source."""
    python, cwd, environ = sys.executable, ROOT, {**os.environ, **env}
    if tree is not None:
        python, cwd = str(tree / ".venv" / "bin" / "python"), tree
        environ.pop("PYTHONPATH", None)  # the tree imports its own source, not this one's
    proc = subprocess.Popen(
        [
            *(python, "-m", "perpetuo", "serve"),
            *("--config", str(config_path), "--port", str(port), *args),
        ],
        cwd=cwd,
        env=environ,
        stdout=subprocess.DEVNULL,
        stderr=open(log_path, "ab") if log_path else subprocess.DEVNULL,  # noqa: SIM115
    )
    wait_http(f"http://127.0.0.1:{port}/health/ready", timeout=60)
    return proc
