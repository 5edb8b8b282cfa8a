"""The mixed soak's arithmetic: least-squares slopes over the samples after warm-up, loop-lag
quantiles from histogram deltas, the pass/fail verdict, and the graphs (matplotlib, PNG).

Kept apart from the run (bench/soak_mixed.py) so that it can be tested in a blink.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

# RSS may rise this much per hour after warm-up: 5 MiB/h is 120 MiB a day, and at the soak's
# few hundred requests a second a leak of even 10 bytes a request would cross it.
MAX_RSS_MIB_PER_HOUR = 5.0
# The fitted rise over the measured window (not the hour) of descriptors, tasks and upstream
# sockets: in-flight requests make each vary by a few between samples, a leak only grows.
MAX_GROWTH = {"fds": 8.0, "tasks": 8.0, "upstream_connections": 8.0}
# Errors other than the ones the traffic asks for (a failing alias, disconnects).
MAX_UNEXPECTED_ERROR_SHARE = 0.001


def slope(points: list[tuple[float, float]]) -> float:
    """Least-squares slope of y over x (0 with fewer than two distinct x)."""
    n = len(points)
    if n < 2:
        return 0.0
    mean_x = sum(x for x, _ in points) / n
    mean_y = sum(y for _, y in points) / n
    spread = sum((x - mean_x) ** 2 for x, _ in points)
    if spread == 0:
        return 0.0
    return sum((x - mean_x) * (y - mean_y) for x, y in points) / spread


def quantile(buckets: dict[float, float], count: float, q: float) -> float | None:
    """Prometheus' histogram_quantile over cumulative `buckets` (upper bound -> count) that
    hold `count` samples: linear within the bucket the quantile falls in; None without samples.
    Past the last finite bound, that bound (as Prometheus answers)."""
    if count <= 0:
        return None
    rank = q * count
    lower, below = 0.0, 0.0
    for bound in sorted(buckets):
        cumulative = buckets[bound]
        if cumulative >= rank:
            if math.isinf(bound):
                return lower
            inside = cumulative - below
            return lower + (bound - lower) * ((rank - below) / inside if inside else 1.0)
        lower, below = bound, cumulative
    return lower


def interval_lag(before: dict[float, float], after: dict[float, float]) -> dict[str, Any]:
    """Loop-lag samples between two scrapes of the histogram (keys: bounds, plus the count
    under the key -1): their p99 and the worst bucket reached, in milliseconds."""
    count = after.get(-1, 0) - before.get(-1, 0)
    delta = {b: after[b] - before.get(b, 0) for b in after if b >= 0}
    p99 = quantile(delta, count, 0.99)
    worst = next((b for b in sorted(delta) if delta[b] >= count), math.inf) if count else None
    return {
        "lag_samples": int(count),
        "lag_p99_ms": None if p99 is None else p99 * 1000,
        "lag_worst_bucket_ms": None if worst is None else worst * 1000,
    }


def verdict(samples: list[dict[str, Any]], warmup_s: float, totals: dict[str, Any]) -> dict:
    """The figures after warm-up and whether each passes; `totals` carries the row count,
    the requests answered and the driver's error tally."""
    after = [s for s in samples if s["t"] >= warmup_s]
    window_s = after[-1]["t"] - after[0]["t"] if len(after) > 1 else 0.0
    rss_per_hour = slope([(s["t"], s["rss_mib"]) for s in after]) * 3600
    checks: dict[str, Any] = {
        "samples_after_warmup": len(after),
        "window_s": round(window_s, 1),
        "rss_mib_per_hour": round(rss_per_hour, 2),
        "rss_pass": len(after) >= 3 and abs(rss_per_hour) <= MAX_RSS_MIB_PER_HOUR,
    }
    for name, limit in MAX_GROWTH.items():
        growth = slope([(s["t"], s[name]) for s in after]) * window_s
        checks[f"{name}_growth"] = round(growth, 2)
        checks[f"{name}_range"] = [min(s[name] for s in after), max(s[name] for s in after)]
        checks[f"{name}_pass"] = len(after) >= 3 and growth <= limit
    lags = [s["lag_p99_ms"] for s in after if s.get("lag_p99_ms") is not None]
    checks["lag_p99_ms_median"] = round(sorted(lags)[len(lags) // 2], 1) if lags else None
    checks["lag_p99_ms_max"] = round(max(lags), 1) if lags else None
    lost = totals["answered"] - totals["rows"]
    checks["lost_rows"] = lost
    checks["rows_pass"] = lost == 0
    share = totals["unexpected_errors"] / totals["sent"] if totals["sent"] else 1.0
    checks["unexpected_error_share"] = share
    checks["errors_pass"] = share <= MAX_UNEXPECTED_ERROR_SHARE
    checks["pass"] = all(v for k, v in checks.items() if k.endswith("_pass"))
    return checks


def plot(samples: list[dict[str, Any]], warmup_s: float, checks: dict, out: Path) -> list[Path]:
    """Four PNGs in `out`: RSS (with its fit), descriptors/tasks/sockets, loop lag p99 per
    interval, and throughput with errors; the warm-up shaded in each."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    out.mkdir(parents=True, exist_ok=True)
    minutes = [s["t"] / 60 for s in samples]
    paths = []

    def figure(name: str, title: str, ylabel: str, series: dict[str, list[Any]]) -> Any:
        fig, ax = plt.subplots(figsize=(8, 3.2), dpi=100)
        for label, values in series.items():
            ax.plot(minutes, values, label=label, linewidth=1.2)
        ax.axvspan(0, warmup_s / 60, color="0.9", label="warm-up")
        ax.set_title(title, fontsize=10)
        ax.set_xlabel("minutes")
        ax.set_ylabel(ylabel)
        ax.grid(True, linewidth=0.3)
        ax.legend(fontsize=8, loc="best")
        return fig, ax

    after = [s for s in samples if s["t"] >= warmup_s]
    fig, ax = figure(
        "rss",
        f"Gateway RSS: {checks['rss_mib_per_hour']:+.2f} MiB/hour after warm-up",
        "MiB",
        {"RSS": [s["rss_mib"] for s in samples]},
    )
    if len(after) > 1:
        k = slope([(s["t"], s["rss_mib"]) for s in after])
        mean_t = sum(s["t"] for s in after) / len(after)
        mean_y = sum(s["rss_mib"] for s in after) / len(after)
        ends = (after[0]["t"], after[-1]["t"])
        ax.plot(
            [t / 60 for t in ends], [mean_y + k * (t - mean_t) for t in ends], "--", label="fit"
        )
        ax.legend(fontsize=8, loc="best")
    paths.append(_save(fig, out / "soak-rss.png"))
    fig, _ = figure(
        "fds",
        "Open file descriptors, event-loop tasks, upstream connections",
        "count",
        {
            "file descriptors": [s["fds"] for s in samples],
            "tasks": [s["tasks"] for s in samples],
            "upstream connections": [s["upstream_connections"] for s in samples],
        },
    )
    paths.append(_save(fig, out / "soak-fds.png"))
    fig, _ = figure(
        "lag",
        "Event-loop lag, p99 of each 10 s interval",
        "ms",
        {"loop lag p99": [s.get("lag_p99_ms") or 0 for s in samples]},
    )
    paths.append(_save(fig, out / "soak-loop-lag.png"))
    fig, _ = figure(
        "throughput",
        "Throughput and errors, per second over each 10 s interval",
        "requests/s",
        {
            "answered": [s["answered_per_s"] for s in samples],
            "client errors seen (expected and not)": [s["errors_per_s"] for s in samples],
        },
    )
    paths.append(_save(fig, out / "soak-throughput.png"))
    plt.close("all")
    return paths


def _save(fig: Any, path: Path) -> Path:
    fig.tight_layout()
    fig.savefig(path)
    return path
