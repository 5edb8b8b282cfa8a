"""Render benchmark results as the Markdown table kept in docs/performance.md."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

BEGIN = "<!-- bench:begin -->"
END = "<!-- bench:end -->"


def render_markdown(results: dict[str, Any]) -> str:
    machine = results["machine"]
    lines = [
        f"Command: `{results['command'].strip()}` — {machine['cpus']} CPUs, "
        f"Python {machine['python']}, {results['duration_s']:.0f} s per scenario.",
        "",
        f"- Start-up to ready: **{results['startup_to_ready_s'] * 1000:.0f} ms**",
        f"- Idle RSS: **{results['idle_rss_mib']:.1f} MiB**; peak RSS under load: "
        f"**{results['peak_rss_mib']:.1f} MiB**",
        "",
        "| mode | conc. | direct rps | gateway rps | rps ratio | direct p50 ms "
        "| gateway p50 ms | added p50 ms | direct p99 ms | gateway p99 ms | direct TTFT p50 ms "
        "| gateway TTFT p50 ms | added TTFT ms | gateway CPU ms/req | errors |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for row in results["rows"]:
        direct, via = row["direct"], row["gateway"]
        ttft_direct = direct.get("ttft_p50_ms")
        ttft_via = via.get("ttft_p50_ms")
        added_ttft = f"{ttft_via - ttft_direct:.3f}" if ttft_direct is not None else "-"
        added_p50 = via["p50_ms"] - direct["p50_ms"]
        lines.append(
            f"| {row['mode']} | {row['concurrency']} | {direct['rps']:.0f} | {via['rps']:.0f} "
            f"| {via['rps'] / direct['rps']:.2f} | {direct['p50_ms']:.3f} | {via['p50_ms']:.3f} "
            f"| {added_p50:.3f} | {direct['p99_ms']:.3f} | {via['p99_ms']:.3f} "
            f"| {_fmt(ttft_direct)} | {_fmt(ttft_via)} | {added_ttft} "
            f"| {row['gateway_cpu_ms_per_request']:.3f} | {via['errors']} |"
        )
    return "\n".join(lines)


def _fmt(value: float | None) -> str:
    return "-" if value is None else f"{value:.3f}"


def write_docs(path: Path, table: str) -> None:
    """Replace the generated block between the markers, keeping the prose around it."""
    text = path.read_text() if path.exists() else f"# Performance\n\n{BEGIN}\n{END}\n"
    block = f"{BEGIN}\n{table}\n{END}"
    text = re.sub(re.escape(BEGIN) + r".*?" + re.escape(END), lambda _: block, text, flags=re.S)
    path.write_text(text)
