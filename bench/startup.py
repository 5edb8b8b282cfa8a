"""Start-up to ready and idle memory, over several starts.

One start says little on a shared machine (the same commit measured 1.39 s and 1.61 s in two
runs), so the bench starts the gateway `rounds` times on a fresh database (the first start:
the schema is migrated by a forked child while the server loads) and `rounds` times on a
database already at head (every later start), alternately, and reports the median and the
range of each, with the median idle RSS one second after ready.
"""

from __future__ import annotations

import shutil
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from bench.system import free_port, process_memory_kib

# (config, data directory, port) -> the started process and its seconds to ready
Start = Callable[[dict[str, Any], Path, int], tuple[Any, float]]


def measure(start: Start, config: dict[str, Any], rounds: int = 5) -> dict[str, Any] | None:
    if rounds < 1:
        return None
    at_head = Path(tempfile.mkdtemp(prefix="perpetuo-startup-head-"))
    fresh_dirs: list[Path] = []
    seconds: dict[str, list[float]] = {"fresh": [], "head": []}
    rss_mib: list[float] = []
    try:
        _one(start, config, at_head)  # migrates: every later start here is at head
        for _ in range(rounds):
            fresh_dirs.append(Path(tempfile.mkdtemp(prefix="perpetuo-startup-fresh-")))
            for kind, workdir in (("fresh", fresh_dirs[-1]), ("head", at_head)):
                ready_s, rss = _one(start, config, workdir)
                seconds[kind].append(ready_s)
                rss_mib.append(rss)
    finally:
        for workdir in (at_head, *fresh_dirs):
            shutil.rmtree(workdir, ignore_errors=True)
    return {
        "rounds": rounds,
        **{f"{kind}_s": _summary(values) for kind, values in seconds.items()},
        "idle_rss_mib": statistics.median(rss_mib),
    }


def _one(start: Start, config: dict[str, Any], workdir: Path) -> tuple[float, float]:
    proc, ready_s = start(config, workdir, free_port())
    try:
        time.sleep(1.0)
        rss = process_memory_kib(proc.pid)["VmRSS"] / 1024
    finally:
        proc.terminate()
        proc.wait(30)
    return ready_s, rss


def _summary(values: list[float]) -> dict[str, Any]:
    return {"median": statistics.median(values), "min": min(values), "max": max(values)}


def describe(startup: dict[str, Any]) -> str:
    """The start-up line of the report, in milliseconds."""

    def part(label: str, summary: dict[str, float]) -> str:
        return (
            f"{label} **{summary['median'] * 1000:.0f} ms** "
            f"({summary['min'] * 1000:.0f}-{summary['max'] * 1000:.0f})"
        )

    return (
        f"Start-up to ready, median of {startup['rounds']} starts each (range): "
        f"{part('fresh database', startup['fresh_s'])}, "
        f"{part('database at head', startup['head_s'])}"
    )
