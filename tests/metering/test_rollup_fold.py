"""Folding a batch into rollup rows gives what adding each record to each of its rows gives."""

from __future__ import annotations

import random
import time

from perpetuo.metering.rollup import COUNTERS, add_into, fold, latency_column
from tests.metering.test_writer import record


def _one_by_one(records):
    """The definition: each record adds into one row per dimension it has."""
    rows: dict = {}
    for r in records:
        counters = dict.fromkeys(COUNTERS, 0)
        counters.update(
            requests=1,
            errors=int(r.status >= 400 or r.error_code is not None),
            prompt_tokens=r.prompt_tokens,
            completion_tokens=r.completion_tokens,
            cost_micros=r.cost_micros,
            latency_sum_ms=r.latency_ms,
            latency_max_ms=r.latency_ms,
        )
        counters[latency_column(r.latency_ms)] += 1
        hour = fold([r])  # the row keys of this record alone
        for key in hour:
            if key in rows:
                add_into(rows[key], dict(counters))
            else:
                rows[key] = dict(counters)
    return rows


def test_a_batch_of_many_keys_folds_as_its_records_one_by_one() -> None:
    rng = random.Random(7)
    now = time.time()
    records = [
        record(
            i,
            key_id=f"key_{rng.randrange(40)}",
            alias=rng.choice(["gpt", "claude"]),
            status=rng.choice([200, 200, 200, 429]),
            latency_ms=rng.uniform(1, 5000),
            prompt_tokens=rng.randrange(1000),
            created_at=now - rng.choice([0, 3600]),  # two hours
        )
        for i in range(600)
    ]
    folded = fold(records)
    expected = _one_by_one(records)
    assert folded.keys() == expected.keys()
    for key, row in folded.items():
        want = expected[key]
        assert row["latency_max_ms"] == want["latency_max_ms"], key
        assert abs(row["latency_sum_ms"] - want["latency_sum_ms"]) < 1e-6 * want["latency_sum_ms"]
        exact = {n: v for n, v in row.items() if n != "latency_sum_ms"}
        assert exact == {n: v for n, v in want.items() if n != "latency_sum_ms"}, key
    everything = [row for (_, _, dim, _), row in folded.items() if dim == "all"]
    assert sum(row["requests"] for row in everything) == 600
    assert max(row["latency_max_ms"] for row in everything) == max(r.latency_ms for r in records)
