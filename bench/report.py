"""Render benchmark results as the Markdown table kept in docs/performance.md."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from bench import dialects, startup

BEGIN = "<!-- bench:begin -->"
END = "<!-- bench:end -->"


_IDLE_OF_STARTS = " (median of those starts, 1 s after ready)"


def _startup(results: dict[str, Any]) -> str:
    if results.get("startup"):
        return startup.describe(results["startup"])
    return f"Start-up to ready: **{results['startup_to_ready_s'] * 1000:.0f} ms**"


def render_markdown(results: dict[str, Any]) -> str:
    machine = results["machine"]
    lines = [
        f"Command: `{results['command'].strip()}` — {machine['cpus']} CPUs, "
        f"Python {machine['python']}, {results['duration_s']:.0f} s per scenario.",
        "",
        f"- {_startup(results)}",
        f"- Idle RSS{_IDLE_OF_STARTS if results.get('startup') else ''}: "
        f"**{results['idle_rss_mib']:.1f} MiB**; peak RSS under load: "
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
    if any(row.get("loop_lag") for row in results["rows"]):
        lines += ["", *render_tail(results["rows"])]
    if results.get("dialect_rows"):
        chat_cpu = {
            (r["mode"], r["concurrency"]): r["cpu_ms"] for r in results["chat_cpu_ms_per_request"]
        }
        lines += ["", *dialects.render(results["dialect_rows"], chat_cpu)]
    if results.get("routing_rows"):
        lines += ["", *render_routing(results["routing_rows"])]
    if results.get("router_overhead_us"):
        figures = ", ".join(f"{k}: {v:.1f} µs" for k, v in results["router_overhead_us"].items())
        lines += ["", f"Router overhead per request, in-process around a no-op call: {figures}."]
    return "\n".join(lines)


def render_tail(rows: list[dict[str, Any]]) -> list[str]:
    """The tail against the median, the direct upstream's beside it, and the gateway's own
    event-loop lag samples (every 0.1 s) during the scenario."""
    lines = [
        "Tail latency and event-loop lag (samples every 0.1 s during the gateway scenario):",
        "",
        "| mode | conc. | gateway p99/p50 | direct p99/p50 | lag samples | > 5 ms | > 25 ms "
        "| > 100 ms | mean lag ms |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for row in rows:
        direct, via, lag = row["direct"], row["gateway"], row.get("loop_lag")
        if not lag:
            continue
        over = lag["over"]
        lines.append(
            f"| {row['mode']} | {row['concurrency']} | {via['p99_ms'] / via['p50_ms']:.1f} "
            f"| {direct['p99_ms'] / direct['p50_ms']:.1f} | {lag['samples']} | {over['0.005']} "
            f"| {over['0.025']} | {over['0.1']} | {lag['mean_ms']:.2f} |"
        )
    return lines


def render_routing(rows: list[dict[str, Any]]) -> list[str]:
    """The routing scenarios, each compared with the 1-deployment alias at its concurrency."""
    baseline = {r["concurrency"]: r for r in rows if r["alias"] == "gpt-4o-mini"}
    lines = [
        "Routing scenarios (JSON chat through the gateway; the 1- and 3-deployment runs are "
        "each the mean of two, run A B B A; ratios against the 1-deployment alias at the same "
        "concurrency, in the same run; client errors are errors the load generator saw):",
        "",
        "| scenario | conc. | rps | p50 ms | p99 ms | CPU ms/req | rps ratio | CPU ratio "
        "| client errors |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for row in rows:
        via, cpu = row["gateway"], row["gateway_cpu_ms_per_request"]
        base = baseline.get(row["concurrency"])
        rps_ratio = via["rps"] / base["gateway"]["rps"] if base else None
        cpu_ratio = cpu / base["gateway_cpu_ms_per_request"] if base else None
        lines.append(
            f"| {row['scenario']} | {row['concurrency']} | {via['rps']:.0f} "
            f"| {via['p50_ms']:.3f} | {via['p99_ms']:.3f} | {cpu:.3f} "
            f"| {_fmt(rps_ratio, 2)} | {_fmt(cpu_ratio, 2)} | {via['errors']} |"
        )
    return lines


def _fmt(value: float | None, digits: int = 3) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


def write_docs(path: Path, table: str, begin: str = BEGIN, end: str = END) -> None:
    """Replace the generated block between the markers, keeping the prose around it."""
    text = path.read_text() if path.exists() else f"# Performance\n\n{begin}\n{end}\n"
    block = f"{begin}\n{table}\n{end}"
    text = re.sub(re.escape(begin) + r".*?" + re.escape(end), lambda _: block, text, flags=re.S)
    path.write_text(text)
