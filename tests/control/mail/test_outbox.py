"""The outbox and its sender against a real SMTP server: retries with backoff after a
refusal, giving up on a permanent one, one delivery per mail across instances sharing a
PostgreSQL database, and the jobs that queue mail on their own (deduplicated)."""

from __future__ import annotations

import asyncio
import datetime as dt
import re
from urllib.parse import parse_qs, urlsplit

import pytest
from sqlalchemy import insert, select, update

from perpetuo.control.actor import Actor
from perpetuo.control.mail import Mailer
from perpetuo.control.mail.config import MailConfig
from perpetuo.control.mail.jobs import queue_budget_alert, queue_key_expiry_notices
from perpetuo.control.mail.worker import MailWorker
from perpetuo.control.mail_preferences import unsubscribe
from perpetuo.store.schema import api_keys, mail_outbox
from perpetuo.store.timeutil import utcnow
from tests.support.people import make_user, make_workspace
from tests.support.plane import SECRET, make_plane
from tests.support.smtp import SMTPServer, text_of


def _mailer(smtp: SMTPServer, **extra) -> Mailer:
    config = MailConfig(
        host="127.0.0.1",
        port=smtp.port,
        security="none",
        sender="Perpetuo <noreply@example.com>",
        base_url="https://llm.example.com",
        retry_seconds=0.2,
        **extra,
    )
    return Mailer(config, SECRET)


async def _queue(plane, mailer: Mailer, to: str, n: int = 1) -> list[str]:
    ids = []
    async with plane.db.begin() as conn:
        for i in range(n):
            context = {"reset_url": f"https://x/{i}", "expires_minutes": 60, "ip": None}
            ids.append(await mailer.send(conn, "password_reset", to, context))
    return ids


async def _row(plane, mail_id: str):
    async with plane.db.connect() as conn:
        return (await conn.execute(select(mail_outbox).where(mail_outbox.c.id == mail_id))).one()


async def _deliver_until_sent(worker: MailWorker, plane, mail_id: str, within: float = 10.0):
    deadline = asyncio.get_running_loop().time() + within
    while asyncio.get_running_loop().time() < deadline:
        await worker.deliver_once()
        row = await _row(plane, mail_id)
        if row.status in ("sent", "failed"):
            return row
        await asyncio.sleep(0.05)
    raise AssertionError("not delivered in time")


async def test_a_refused_delivery_is_retried_later_and_then_sent(tmp_path, smtp: SMTPServer):
    plane = await make_plane(f"sqlite+aiosqlite:///{tmp_path / 'db.sqlite'}")
    mailer = _mailer(smtp)
    worker = MailWorker(plane.db, mailer)
    smtp.inbox.refuse = ["451 4.3.0 Mailbox busy, try again later"]
    [mail_id] = await _queue(plane, mailer, "ann@example.com")

    assert await worker.deliver_once() == 1
    row = await _row(plane, mail_id)
    assert (row.status, row.attempts) == ("pending", 1)
    assert "451" in row.last_error
    assert row.next_attempt_at > utcnow()  # backed off, not retried in a tight loop
    assert await worker.deliver_once() == 0  # not yet due

    row = await _deliver_until_sent(worker, plane, mail_id)
    assert (row.status, row.attempts) == ("sent", 2)
    assert row.text_body == row.html_body == ""  # a sent mail's links are not kept
    assert smtp.inbox.deliveries == 2
    [mail] = smtp.inbox.to("ann@example.com")
    assert "https://x/0" in text_of(mail)
    await plane.db.dispose()


async def test_a_permanent_refusal_is_not_retried(tmp_path, smtp: SMTPServer):
    plane = await make_plane(f"sqlite+aiosqlite:///{tmp_path / 'db.sqlite'}")
    mailer = _mailer(smtp)
    worker = MailWorker(plane.db, mailer)
    smtp.inbox.refuse = ["550 5.1.1 No such user"]
    [mail_id] = await _queue(plane, mailer, "gone@example.com")
    await worker.deliver_once()
    row = await _row(plane, mail_id)
    assert (row.status, row.attempts) == ("failed", 1)
    assert "550" in row.last_error
    async with plane.db.begin() as conn:  # even when it would be due
        await conn.execute(update(mail_outbox).values(next_attempt_at=utcnow()))
    assert await worker.deliver_once() == 0
    assert smtp.inbox.deliveries == 1
    await plane.db.dispose()


async def test_an_unreachable_server_gives_up_after_the_last_attempt(tmp_path):
    plane = await make_plane(f"sqlite+aiosqlite:///{tmp_path / 'db.sqlite'}")
    nobody = SMTPServer()  # a free port, never started: nothing listens there
    mailer = _mailer(nobody, max_attempts=2, timeout=2.0)
    worker = MailWorker(plane.db, mailer)
    [mail_id] = await _queue(plane, mailer, "ann@example.com")
    row = await _deliver_until_sent(worker, plane, mail_id)
    assert (row.status, row.attempts) == ("failed", 2)
    assert "refused" in row.last_error.lower()
    await plane.db.dispose()


async def test_two_instances_on_one_postgresql_never_send_a_mail_twice(postgres, smtp):
    url = postgres.create_database("mail_two_instances")
    first, second = await make_plane(url), await make_plane(url)  # two engines, two pools
    mailer = _mailer(smtp)
    workers = [MailWorker(first.db, mailer), MailWorker(second.db, mailer)]
    ids = await _queue(first, mailer, "many@example.com", 45)
    for _ in range(20):  # both claim from the same due rows at the same time
        claimed = await asyncio.gather(*(w.deliver_once() for w in workers))
        if not any(claimed):
            break
    links = {re.search(r"https://x/\d+", text_of(m)).group(0) for m in smtp.inbox.messages}
    assert len(smtp.inbox.messages) == 45
    assert links == {f"https://x/{i}" for i in range(45)}
    assert workers[0].sent + workers[1].sent == 45
    assert workers[0].sent and workers[1].sent  # both took part
    for mail_id in ids:
        assert (await _row(first, mail_id)).status == "sent"
    await first.db.dispose()
    await second.db.dispose()


async def _key(plane, workspace_id: str, owner: str | None, expires_in: dt.timedelta) -> str:
    key_id = f"key_{workspace_id[-6:]}{owner or 'svc'}"[:40]
    now = utcnow()
    async with plane.db.begin() as conn:
        await conn.execute(
            insert(api_keys).values(
                id=key_id,
                workspace_id=workspace_id,
                owner_id=owner,
                name="ci deploys",
                environment="live",
                prefix="pk_live_AbCd",
                last4="wxyz",
                key_hash=key_id,
                scopes=["chat"],
                created_at=now,
                updated_at=now,
                expires_at=now + expires_in,
            )
        )
    return key_id


async def test_key_expiry_notices_go_once_to_the_owner_and_stop_after_unsubscribing(
    tmp_path, smtp: SMTPServer
):
    plane = await make_plane(f"sqlite+aiosqlite:///{tmp_path / 'db.sqlite'}")
    mailer = plane.mail = _mailer(smtp)
    worker = MailWorker(plane.db, mailer)
    owner = await make_user(plane, "owner@example.com")
    member = await make_user(plane, "member@example.com")
    workspace_id = await make_workspace(plane, {owner: "owner", member: "member"})
    key_id = await _key(plane, workspace_id, member, dt.timedelta(days=3))
    await _key(plane, workspace_id, None, dt.timedelta(days=30))  # not within 7 days

    assert await queue_key_expiry_notices(plane.db, mailer, 7) == 1
    assert await queue_key_expiry_notices(plane.db, mailer, 7) == 0  # one notice per expiry
    await worker.deliver_once()
    [mail] = smtp.inbox.messages
    assert mail["To"] == "member@example.com"
    assert 'API key "ci deploys" expires' in mail["Subject"]
    assert mail["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    one_click = mail["List-Unsubscribe"].strip("<>")
    assert one_click.startswith("https://llm.example.com/api/mail/unsubscribe?token=")
    assert "/ui/unsubscribe?token=" in text_of(mail)

    token = parse_qs(urlsplit(one_click).query)["token"][0]
    result = await unsubscribe(plane, token, Actor(kind="system"))
    assert {c["id"]: c["enabled"] for c in result["categories"]}["keys"] is False
    with pytest.raises(Exception, match="not valid"):
        await unsubscribe(plane, token[:-2] + "xx", Actor(kind="system"))

    async with plane.db.begin() as conn:  # the key is renewed, and will expire again
        await conn.execute(
            update(api_keys)
            .where(api_keys.c.id == key_id)
            .values(expires_at=utcnow() + dt.timedelta(days=2))
        )
    assert await queue_key_expiry_notices(plane.db, mailer, 7) == 0  # opted out
    await plane.db.dispose()


async def test_a_budget_alert_mails_the_workspace_admins_once(tmp_path, smtp: SMTPServer):
    plane = await make_plane(f"sqlite+aiosqlite:///{tmp_path / 'db.sqlite'}")
    mailer = _mailer(smtp)
    worker = MailWorker(plane.db, mailer)
    people = {
        await make_user(plane, "own@example.com"): "owner",
        await make_user(plane, "adm@example.com"): "admin",
        await make_user(plane, "mem@example.com"): "member",
    }
    workspace_id = await make_workspace(plane, people)
    event = {
        "workspace_id": workspace_id,
        "scope": "workspace",
        "scope_id": workspace_id,
        "period": "monthly",
        "period_start": "2026-12-01T00:00:00+00:00",
        "threshold_usd": 50.0,
        "budget_usd": 80.0,
        "spent_usd": 50.25,
    }
    for _ in range(2):  # another instance, or a retried delivery, queues it again
        async with plane.db.begin() as conn:
            await queue_budget_alert(conn, mailer, event)
    await worker.deliver_once()
    assert sorted(m["To"] for m in smtp.inbox.messages) == ["adm@example.com", "own@example.com"]
    mail = smtp.inbox.messages[0]
    assert "$50.00" in mail["Subject"] and "$50.25 spent" in text_of(mail)
    await plane.db.dispose()
