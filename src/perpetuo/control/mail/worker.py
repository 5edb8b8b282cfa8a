"""The background sender: claims due mail from the outbox, delivers it over SMTP, records
the outcome; and now and then runs the mail jobs (key-expiry notices, pruning old rows).

Every instance runs one. It wakes every `poll_interval` seconds, or at once when this
instance queued something; a full batch is followed straight away by the next.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import random
import secrets
import socket
import time
from typing import TYPE_CHECKING, Any

from perpetuo.control.mail import outbox
from perpetuo.control.mail.transport import SMTPTransport, build_message, describe, is_permanent
from perpetuo.store.database import Database

if TYPE_CHECKING:
    from perpetuo.control.mail.service import Mailer

log = logging.getLogger("perpetuo.mail")

BATCH = 20
JOB_INTERVAL = 6 * 3600.0  # key-expiry notices and pruning; deduplicated, so any rate is safe
FIRST_JOB_AFTER = (30.0, 300.0)  # instances started together spread their first run out


class MailWorker:
    def __init__(self, db: Database, mailer: Mailer, transport: Any = None) -> None:
        assert mailer.config is not None
        self.db = db
        self.mailer = mailer
        self.config = mailer.config
        self.transport = transport or SMTPTransport(mailer.config)
        self.sender = f"{socket.gethostname()[:30]}:{os.getpid()}:{secrets.token_hex(4)}"
        self.sent = 0
        self.failed = 0
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._stopping = False
        self._next_jobs = time.monotonic() + _first_job_delay()

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name="mail-outbox")

    def poke(self) -> None:
        """Something was queued here: look soon (after the queuing transaction commits)."""
        loop = asyncio.get_running_loop()
        loop.call_later(0.05, self._wake.set)

    async def deliver_once(self) -> int:
        """Claim and deliver one batch; how many mails were claimed."""
        rows = await outbox.claim(self.db, self.sender, BATCH)
        if not rows:
            return 0
        messages, ready = [], []
        for row in rows:
            try:
                messages.append(build_message(self.config, row))
                ready.append(row)
            except (ValueError, TypeError) as exc:  # a malformed address or header: never sends
                await outbox.failed(
                    self.db, row, self.sender, describe(exc), permanent=True, config=self.config
                )
                self.failed += 1
        outcomes = await self.transport.send(messages) if messages else []
        for row, outcome in zip(ready, outcomes, strict=True):
            if outcome is None:
                await outbox.sent(self.db, row.id, self.sender)
                self.sent += 1
                continue
            permanent = is_permanent(outcome)
            log.warning(
                "mail %s (%s) to %s not delivered (attempt %d%s): %s",
                row.id,
                row.template,
                _masked(row.to_address),
                row.attempts,
                ", giving up" if permanent or row.attempts >= self.config.max_attempts else "",
                describe(outcome),
            )
            error = describe(outcome)
            await outbox.failed(
                self.db, row, self.sender, error, permanent=permanent, config=self.config
            )
            self.failed += 1
        return len(rows)

    async def run_jobs(self) -> None:
        from perpetuo.control.mail.jobs import queue_key_expiry_notices

        if self.config.key_expiry_days:
            await queue_key_expiry_notices(self.db, self.mailer, self.config.key_expiry_days)
        await outbox.prune(self.db)

    async def _run(self) -> None:
        while not self._stopping:
            claimed = 0
            try:
                claimed = await self.deliver_once()
                if time.monotonic() >= self._next_jobs:
                    self._next_jobs = time.monotonic() + JOB_INTERVAL
                    await self.run_jobs()
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # the database is away: try again at the next tick
                log.warning("mail outbox pass failed: %s", exc)
            if claimed >= BATCH or self._stopping:
                continue
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), self.config.poll_interval)
            self._wake.clear()

    async def aclose(self, grace: float = 5.0) -> None:
        """Let a delivery in progress finish (a mail handed to the server but not marked
        sent would go out again after its lease), then stop."""
        if self._task is None:
            return
        self._stopping = True
        self._wake.set()
        with contextlib.suppress(TimeoutError, asyncio.CancelledError):
            await asyncio.wait_for(asyncio.shield(self._task), grace)
        self._task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._task
        self._task = None


def _first_job_delay() -> float:
    return random.uniform(*FIRST_JOB_AFTER)


def _masked(address: str) -> str:
    """Logs name the domain, not the person."""
    return "***@" + address.rpartition("@")[2]
