"""The logs page's bounded search: rollups rule out hours that cannot match, slices stop
after the time budget, and searching on from where it stopped finds every match once."""

from __future__ import annotations

import datetime as dt
import time
from types import SimpleNamespace

from perpetuo.control.actor import CLI_ACTOR
from perpetuo.metering.record import RequestRecord
from perpetuo.metering.writer import write_batch
from perpetuo.ui import log_search
from perpetuo.ui.timerange import parse_range
from tests.support.people import make_workspace
from tests.support.plane import make_plane

HOURS = 48


async def _filled(tmp_path):
    plane = await make_plane(f"sqlite+aiosqlite:///{tmp_path / 'db.sqlite'}")
    workspace_id = await make_workspace(plane, {})
    now = time.time()
    records = [
        RequestRecord(
            id=f"req_{n:04d}",
            workspace_id=workspace_id,
            created_at=now - n * 900,  # every quarter hour for two days
            endpoint=("chat", "responses", "messages")[n % 3],
            status=429 if n % 7 == 0 else 200,
            alias="rare" if n % 40 == 0 else "common",
            fallback=n % 11 == 0,
        )
        for n in range(HOURS * 4)
    ]
    await write_batch(plane.db, records)
    page = SimpleNamespace(plane=plane, actor=CLI_ACTOR, id=workspace_id)
    return plane, page, records


async def _everything(page, window, filters, limit=5):
    """Follow the page links (Older, or Search older) to the end."""
    seen, cursor, stops = [], None, 0
    while True:
        found = await log_search.search(page, window, filters, cursor, limit)
        seen += [row.id for row in found.rows]
        stops += found.searched_to is not None
        if found.next_cursor is None:
            return seen, stops
        cursor = found.next_cursor


async def test_filters_find_every_match_once_across_stops(tmp_path, monkeypatch):
    plane, page, records = await _filled(tmp_path)
    window = parse_range("7d", None, None)
    monkeypatch.setattr(log_search, "TIME_BUDGET", 0.0)  # stop after every slice
    for filters, wanted in (
        ({"status": 429}, [r.id for r in records if r.status == 429]),
        ({"alias": "rare"}, [r.id for r in records if r.alias == "rare"]),
        ({"fallback": True}, [r.id for r in records if r.fallback]),
        ({"endpoint": "messages"}, [r.id for r in records if r.endpoint == "messages"]),
    ):
        full = {name: None for name in ("endpoint", "key_id", "alias", "provider", "model",
                                        "error_code", "cache", "status", "stream", "fallback")}  # fmt: skip
        seen, stops = await _everything(page, window, {**full, **filters})
        assert seen == wanted, filters  # newest first, none missed, none twice
        assert stops > 0, filters  # it did stop and go on
    await plane.db.dispose()


async def test_the_rollups_answer_nothing_matches_without_reading_logs(tmp_path, monkeypatch):
    plane, page, _ = await _filled(tmp_path)
    window = parse_range("7d", None, None)

    async def refuse(*args, **kwargs):
        raise AssertionError("the request log was read")

    monkeypatch.setattr(log_search.analytics, "search_logs", refuse)
    found = await log_search.search(page, window, {"alias": "never-seen"}, None, 50)
    assert found.rows == [] and found.next_cursor is None and found.searched_to is None
    hours = await log_search.candidate_hours(
        page, window.since, window.until, {"alias": "rare", "status": "error"}
    )
    assert 0 < len(hours) < HOURS and hours == sorted(hours, reverse=True)
    assert all(h.minute == 0 and h.tzinfo == dt.UTC for h in hours)
    await plane.db.dispose()
