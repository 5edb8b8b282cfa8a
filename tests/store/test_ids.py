"""Request ids: one format, unique, and ordered by time (the request log's index relies on it
for appends at its end)."""

from __future__ import annotations

import re

from perpetuo.store import ids


def test_request_ids_sort_by_time_and_differ_within_a_millisecond(monkeypatch) -> None:
    now = [1_765_000_000.0]
    monkeypatch.setattr(ids.time, "time", lambda: now[0])
    same_moment = {ids.new_request_id() for _ in range(1000)}
    assert len(same_moment) == 1000
    assert all(re.fullmatch(r"req_[0-9a-f]{24}", i) for i in same_moment)
    now[0] += 0.001
    later = ids.new_request_id()
    assert later > max(same_moment)
