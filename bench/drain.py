"""Waiting for a gateway's request log to catch up after a scenario, before its CPU is read.

A writer that falls behind under load does part of a scenario's work (rows, rollups, spill
and replay) after the load ends; reading CPU only then would leave that work out and flatter
a gateway that cannot keep up. The gateway's readiness detail (operators only) has each
worker's request-log state: it is asked until `CLEAR_ANSWERS` answers in a row, each on a
new connection (so every worker is asked, whichever takes it), say nothing is queued, in
flight or spilled.
"""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request

CLEAR_ANSWERS = 8


def _clear(base_url: str, key: str) -> bool:
    request = urllib.request.Request(
        f"{base_url}/health/ready", headers={"authorization": f"Bearer {key}"}
    )
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            body = json.loads(response.read())
    except urllib.error.HTTPError as exc:  # 503 has the same detail
        body = json.loads(exc.read())
    log = body["checks"]["request_log"]
    return log["queue_depth"] == 0 and log["lag_seconds"] == 0 and log["spill_bytes"] == 0


def wait_for_request_log(base_url: str, key: str, timeout: float = 180.0) -> float:
    """Seconds waited until the request log has written everything it was given."""
    started = time.monotonic()
    clear = 0
    while clear < CLEAR_ANSWERS:
        if time.monotonic() - started > timeout:
            raise RuntimeError(f"the request log of {base_url} did not catch up in {timeout} s")
        clear = clear + 1 if _clear(base_url, key) else 0
        time.sleep(0.05 if clear else 0.25)
    return time.monotonic() - started
