"""This tree against an earlier commit, on the same host, in one run: `./dev bench --against REF`.

Figures from different days on a shared host are not comparable (this one's direct upstream
served 48,000 requests a second one week and 25,000 the next), so a round's before and after
are measured here side by side. REF is checked out into a temporary git worktree with its own
virtual environment, installed from its own lock file (`uv sync --frozen`: the packages it
was measured with). Each round starts both gateways alternately (its mock, config, master key
and SQLite request log as the main table's; a fresh database), and measures time to ready,
idle RSS 1 s after, then CPU per request for JSON and streamed chat at each concurrency
(the whole process, read once its request log has caught up). Medians of the rounds.
"""

from __future__ import annotations

import os
import shutil
import statistics
import subprocess
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml

from bench.drain import wait_for_request_log
from bench.system import (
    free_port,
    mock_config,
    process_memory_kib,
    start_gateway_process,
    start_mock,
    tree_cpu_seconds,
)

ROOT = Path(__file__).resolve().parent.parent
MASTER_KEY = "pk-bench-master-key"
# url, concurrency, seconds, stream, key -> the load generator's summary
Load = Callable[[str, int, float, bool, str], dict[str, Any]]


def prepare(ref: str, workdir: Path) -> Path:
    """A worktree of `ref` with its own environment, from its lock file."""
    tree = workdir / "tree"
    subprocess.run(["git", "worktree", "add", "--detach", str(tree), ref], cwd=ROOT, check=True)
    uv = shutil.which("uv") or str(ROOT / ".venv" / "bin" / "uv")
    subprocess.run(
        [uv, "sync", "--frozen", "--quiet", "--compile-bytecode", "--no-dev"],
        cwd=tree,
        env={**os.environ, "UV_PROJECT_ENVIRONMENT": str(tree / ".venv")},
        check=True,
    )
    # Its own modules compiled once, as `./dev` does: with PYTHONDONTWRITEBYTECODE set, every
    # start would compile them again (0.3-0.5 s and several MiB more, measured).
    python = str(tree / ".venv" / "bin" / "python")
    subprocess.run([python, "-m", "compileall", "-q", "src"], cwd=tree, check=True)
    return tree


def discard(tree: Path) -> None:
    subprocess.run(["git", "worktree", "remove", "--force", str(tree)], cwd=ROOT, check=False)


def _settle(url: str) -> None:
    """Wait for the request log to catch up; an older gateway that does not report its
    queue gets two seconds (it caught up in under 1.5 s after these loads)."""
    try:
        wait_for_request_log(url, MASTER_KEY, 120)
    except (KeyError, TypeError):
        time.sleep(2.0)


def _measure(
    tree: Path,
    config: Path,
    workdir: Path,
    cells: list[tuple[str, int]],
    seconds: float,
    load: Load,
) -> dict[str, Any]:
    port = free_port()
    env = {
        "PERPETUO_MASTER_KEY": MASTER_KEY,
        "PERPETUO_DATA_DIR": str(workdir / "data"),
        "PERPETUO_LOG_LEVEL": "warning",
    }
    started = time.perf_counter()
    proc = start_gateway_process(config, port, env, workdir / "gateway.log", tree=tree)
    base = f"http://127.0.0.1:{port}"
    try:
        result: dict[str, Any] = {"ready_s": time.perf_counter() - started}
        time.sleep(1.0)
        result["idle_rss_mib"] = process_memory_kib(proc.pid)["VmRSS"] / 1024
        url = f"{base}/v1/chat/completions"
        for mode, concurrency in cells:
            stream = mode == "stream"
            load(url, concurrency, 2, stream, MASTER_KEY)  # warm-up
            _settle(base)
            before = tree_cpu_seconds(proc.pid)
            served = load(url, concurrency, seconds, stream, MASTER_KEY)
            _settle(base)
            cpu = tree_cpu_seconds(proc.pid) - before
            result[f"{mode} c={concurrency}"] = 1000 * cpu / max(served["requests"], 1)
        return result
    finally:
        proc.terminate()
        proc.wait(30)


def run(ref: str, levels: list[int], seconds: float, rounds: int, load: Load) -> dict[str, Any]:
    workdir = Path(tempfile.mkdtemp(prefix="perpetuo-against-"))
    mock_port = free_port()
    mock = start_mock(mock_port)
    config = workdir / "bench.yaml"
    config.write_text(yaml.safe_dump(mock_config(mock_port)))
    cells = [(mode, c) for mode in ("json", "stream") for c in levels]
    runs: dict[str, list[dict[str, Any]]] = {ref: [], "this tree": []}
    tree = prepare(ref, workdir)
    try:
        trees = {ref: tree, "this tree": ROOT}
        for round_ in range(rounds):
            order = list(trees) if round_ % 2 == 0 else list(trees)[::-1]
            for name in order:
                scratch = Path(tempfile.mkdtemp(dir=workdir))
                runs[name].append(_measure(trees[name], config, scratch, cells, seconds, load))
                print(name, {k: round(v, 3) for k, v in runs[name][-1].items()}, flush=True)
    finally:
        discard(tree)
        mock.terminate()
        shutil.rmtree(workdir, ignore_errors=True)
    return {"ref": ref, "rounds": rounds, "duration_s": seconds, "runs": runs}


def render(results: dict[str, Any]) -> list[str]:
    ref = results["ref"]
    before, after = results["runs"][ref], results["runs"]["this tree"]
    rows = [
        f"`./dev bench --against {ref}`: medians of {results['rounds']} alternating rounds, "
        f"{results['duration_s']:g} s per cell, a fresh database per start.",
        "",
        f"| | {ref} | this tree | change |",
        "|---|---:|---:|---:|",
    ]
    units = {"ready_s": ("ready, fresh database", "s"), "idle_rss_mib": ("idle RSS", "MiB")}
    for key in before[0]:
        label, unit = units.get(key, (f"{key}, CPU per request", "ms"))
        b = statistics.median(run[key] for run in before)
        a = statistics.median(run[key] for run in after)
        rows.append(f"| {label} | {b:.3f} {unit} | {a:.3f} {unit} | {100 * (a - b) / b:+.0f}% |")
    return rows
