"""The mail outbox table: queue, claim, and record the outcome of each delivery.

Mail is queued in the caller's transaction, so it goes out if and only if the change that
caused it commits. Senders claim due rows with a conditional update (status and lease
checked in the WHERE clause): on PostgreSQL candidates are picked with SKIP LOCKED, and a
second instance that still reaches a row re-reads it after the first commits and finds it
taken; on SQLite writes are serialised. Either way one row is sent by one instance. A claim
is a lease: a sender that dies mid-delivery leaves a row that another instance retries once
the lease runs out (the one case where a mail may go out twice, as with any at-least-once
queue).
"""

from __future__ import annotations

import datetime as dt
import random
from collections.abc import Sequence
from typing import Any

from sqlalchemy import and_, delete, insert, or_, select, update

from perpetuo.control.mail.render import Rendered
from perpetuo.store.aio import AsyncConnection
from perpetuo.store.database import Database
from perpetuo.store.ids import new_id
from perpetuo.store.schema import mail_outbox
from perpetuo.store.timeutil import utcnow

LEASE = dt.timedelta(minutes=5)  # longer than any delivery (timeouts are seconds)
MAX_DELAY = 3600.0  # retry delays double up to this
KEEP = dt.timedelta(days=30)  # sent and failed rows are deleted after this


async def enqueue(
    conn: AsyncConnection,
    *,
    template: str,
    to: str,
    rendered: Rendered,
    headers: dict[str, str] | None = None,
    workspace_id: str | None = None,
    user_id: str | None = None,
    dedupe_key: str | None = None,
) -> str | None:
    """Queue one mail; its id, or None when `dedupe_key` was queued before."""
    mail_id = new_id("mail")
    now = utcnow()
    values: dict[str, Any] = {
        "id": mail_id,
        "template": template,
        "to_address": to,
        "subject": rendered.subject,
        "text_body": rendered.text,
        "html_body": rendered.html,
        "headers": headers or {},
        "workspace_id": workspace_id,
        "user_id": user_id,
        "dedupe_key": dedupe_key,
        "status": "pending",
        "attempts": 0,
        "next_attempt_at": now,
        "created_at": now,
    }
    if dedupe_key is None:
        await conn.execute(insert(mail_outbox).values(**values))
        return mail_id
    statement = (
        conn.insert(mail_outbox)
        .values(**values)
        .on_conflict_do_nothing(index_elements=["dedupe_key"])
    )
    result = await conn.execute(statement)
    return mail_id if result.rowcount == 1 else None


def _due(now: dt.datetime) -> Any:
    c = mail_outbox.c
    return or_(
        and_(c.status == "pending", c.next_attempt_at <= now),
        and_(c.status == "sending", c.lease_until < now),  # its sender died
    )


async def claim(db: Database, sender: str, limit: int) -> list[Any]:
    """Up to `limit` due mails, now leased to `sender` (attempts counted)."""
    c = mail_outbox.c
    now = utcnow()
    claimed: list[str] = []
    async with db.begin() as conn:
        # PostgreSQL: rows another sender is claiming right now are skipped, not waited on,
        # so instances share the queue (SQLite has one writer at a time anyway).
        candidates = (
            await conn.scalars(
                select(c.id)
                .where(_due(now))
                .order_by(c.next_attempt_at)
                .limit(limit)
                .with_for_update(skip_locked=True)
            )
        ).all()
        for mail_id in candidates:
            result = await conn.execute(
                update(mail_outbox)
                .where(c.id == mail_id, _due(now))
                .values(
                    status="sending",
                    claimed_by=sender,
                    lease_until=now + LEASE,
                    attempts=c.attempts + 1,
                )
            )
            if result.rowcount == 1:
                claimed.append(mail_id)
        if not claimed:
            return []
        return list((await conn.execute(select(mail_outbox).where(c.id.in_(claimed)))).all())


async def sent(db: Database, mail_id: str, sender: str) -> None:
    """Delivered: the bodies are erased (they may hold single-use links)."""
    await _finish(db, mail_id, sender, status="sent", sent_at=utcnow(), last_error=None)


async def failed(
    db: Database, row: Any, sender: str, error: str, *, permanent: bool, config: Any
) -> None:
    """A refused or failed delivery: retried later with a doubled delay, or given up."""
    if permanent or row.attempts >= config.max_attempts:
        await _finish(db, row.id, sender, status="failed", last_error=error[:500])
        return
    delay = retry_delay(row.attempts, config.retry_seconds)
    async with db.begin() as conn:
        await conn.execute(
            update(mail_outbox)
            .where(mail_outbox.c.id == row.id, mail_outbox.c.claimed_by == sender)
            .values(
                status="pending",
                lease_until=None,
                next_attempt_at=utcnow() + dt.timedelta(seconds=delay),
                last_error=error[:500],
            )
        )


def retry_delay(attempts: int, base: float) -> float:
    """base, 2 x base, 4 x base ... at most an hour, with 10% jitter so a queue that failed
    together does not retry together."""
    delay = min(base * 2.0 ** min(attempts - 1, 30), MAX_DELAY)
    return delay * random.uniform(0.9, 1.1)


async def _finish(db: Database, mail_id: str, sender: str, **values: Any) -> None:
    async with db.begin() as conn:
        await conn.execute(
            update(mail_outbox)
            .where(mail_outbox.c.id == mail_id, mail_outbox.c.claimed_by == sender)
            .values(text_body="", html_body="", lease_until=None, **values)
        )


async def prune(db: Database) -> int:
    c = mail_outbox.c
    async with db.begin() as conn:
        result = await conn.execute(
            delete(mail_outbox).where(
                c.status.in_(("sent", "failed")), c.created_at < utcnow() - KEEP
            )
        )
    return result.rowcount or 0


async def rows_for(conn: AsyncConnection, ids: Sequence[str]) -> list[Any]:
    return list((await conn.execute(select(mail_outbox).where(mail_outbox.c.id.in_(ids)))).all())
