"""Writing API keys' last-used times in batches, off the request path."""

from __future__ import annotations

import datetime as dt
import logging

from perpetuo.auth.key_cache import KeyCache
from perpetuo.store.database import Database
from perpetuo.store.repos.api_keys import record_last_used

log = logging.getLogger("perpetuo.keys")


async def flush_last_used(db: Database, keys: KeyCache) -> None:
    used = keys.take_last_used()
    if not used:
        return
    rows = [(key_id, dt.datetime.fromtimestamp(ts, dt.UTC)) for key_id, ts in used.items()]
    try:
        async with db.begin() as conn:
            await record_last_used(conn, rows)
    except Exception as exc:  # a database outage must not lose the times for good
        log.warning("could not record key last-used times (%s); will retry", exc)
        for key_id, ts in used.items():
            keys.restore_last_used(key_id, ts)
