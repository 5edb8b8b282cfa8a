"""The gateway's own event-loop lag histogram (perpetuo_event_loop_lag_seconds), read from
/metrics before and after a scenario: how many of its samples came late, and by how much."""

from __future__ import annotations

import urllib.request
from typing import Any

from prometheus_client.parser import text_string_to_metric_families

NAME = "perpetuo_event_loop_lag_seconds"
BOUNDS = ("0.005", "0.025", "0.1")


def scrape(base_url: str) -> dict[str, float]:
    """Cumulative bucket counts by upper bound, plus `count` and `sum`."""
    with urllib.request.urlopen(f"{base_url}/metrics", timeout=10) as response:
        text = response.read().decode()
    values: dict[str, float] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == f"{NAME}_bucket":
                values[sample.labels["le"]] = values.get(sample.labels["le"], 0) + sample.value
            elif sample.name in (f"{NAME}_count", f"{NAME}_sum"):
                key = sample.name.rsplit("_", 1)[1]
                values[key] = values.get(key, 0) + sample.value
    return values


def late(before: dict[str, float], after: dict[str, float]) -> dict[str, Any]:
    """Samples taken between the two scrapes, and how many were later than each bound."""
    count = after.get("count", 0) - before.get("count", 0)
    over = {bound: int(count - (after.get(bound, 0) - before.get(bound, 0))) for bound in BOUNDS}
    total = after.get("sum", 0) - before.get("sum", 0)
    return {"samples": int(count), "over": over, "mean_ms": total / count * 1000 if count else 0}


def describe(lag: dict[str, Any]) -> str:
    over = ", ".join(f">{float(b) * 1000:g} ms {n}" for b, n in lag["over"].items())
    return f"loop lag: {lag['samples']} samples, {over}"
