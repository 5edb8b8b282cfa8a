"""The mail API the rest of the code calls: queue a template for an address, a person or a
workspace's administrators, inside the caller's transaction.

    queued = await plane.mail.send_to_user(conn, "payment_failed", user_id,
                                           {"workspace_name": ..., "billing_url": ...},
                                           workspace_id=..., dedupe_key="invoice:in_123")

Every call is a no-op returning None when no SMTP server is configured, so callers need no
check of their own. Non-transactional templates (catalog.py) are skipped for people who
turned their category off and carry a signed unsubscribe link (body and List-Unsubscribe).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any
from urllib.parse import urlencode

from sqlalchemy import select

from perpetuo.control.mail import outbox
from perpetuo.control.mail.catalog import CATEGORIES, category_of
from perpetuo.control.mail.config import MailConfig
from perpetuo.control.mail.render import render
from perpetuo.control.mail.unsubscribe import make_token, unsubscribe_key
from perpetuo.store.aio import AsyncConnection
from perpetuo.store.database import Database
from perpetuo.store.schema import memberships, users

ADMIN_ROLES = ("owner", "admin")
UNSUBSCRIBE_PAGE = "/ui/unsubscribe"
UNSUBSCRIBE_API = "/api/mail/unsubscribe"  # RFC 8058 one-click POST target
PREFERENCES_PAGE = "/ui/account"


class Mailer:
    def __init__(self, config: MailConfig | None = None, signing_key: bytes = b"") -> None:
        self.config = config
        self._unsubscribe_key = unsubscribe_key(signing_key)
        self._worker: Any = None

    @property
    def enabled(self) -> bool:
        return self.config is not None

    @property
    def product(self) -> str:
        return self.config.product if self.config is not None else "Perpetuo"

    @property
    def base_url(self) -> str:
        return self.config.base_url if self.config is not None else ""

    def link(self, path: str, **query: str) -> str:
        """An absolute link into this server for a mail: `link("/ui/invite", token=...)`."""
        suffix = f"?{urlencode(query)}" if query else ""
        return f"{self.base_url}{path}{suffix}"

    def unsubscribe_token(self, user_id: str, category: str) -> str:
        return make_token(self._unsubscribe_key, user_id, category)

    @property
    def unsubscribe_signing_key(self) -> bytes:
        return self._unsubscribe_key

    async def send(
        self,
        conn: AsyncConnection,
        template: str,
        to: str,
        context: Mapping[str, Any] | None = None,
        *,
        user_id: str | None = None,
        workspace_id: str | None = None,
        dedupe_key: str | None = None,
        name: str = "",
        opted_out: list[str] | None = None,
    ) -> str | None:
        """Queue `template` for the address `to`. Returns the outbox id, or None when mail
        is off, the recipient opted out of the template's category, or `dedupe_key` was
        queued already. Non-transactional templates need `user_id` (whose preferences and
        unsubscribe link apply); prefer send_to_user, which reads them."""
        category = category_of(template)  # KeyError for an unknown template, even when off
        if self.config is None:
            return None
        if category is not None and user_id is None:
            raise ValueError(f"{template} is not transactional: it needs the recipient's user_id")
        if category is not None and category in (opted_out or ()):
            return None
        full = {
            "product": self.config.product,
            "base_url": self.config.base_url,
            "name": name,
            "unsubscribe_url": None,
            "preferences_url": self.link(PREFERENCES_PAGE),
            "category_label": CATEGORIES.get(category or "", ""),
            **(context or {}),
        }
        headers: dict[str, str] = {}
        if category is not None:
            assert user_id is not None
            token = self.unsubscribe_token(user_id, category)
            full["unsubscribe_url"] = self.link(UNSUBSCRIBE_PAGE, token=token)
            headers["List-Unsubscribe"] = f"<{self.link(UNSUBSCRIBE_API, token=token)}>"
            headers["List-Unsubscribe-Post"] = "List-Unsubscribe=One-Click"
        queued = await outbox.enqueue(
            conn,
            template=template,
            to=to,
            rendered=render(template, full),
            headers=headers,
            workspace_id=workspace_id,
            user_id=user_id,
            dedupe_key=dedupe_key,
        )
        if queued is not None and self._worker is not None:
            self._worker.poke()
        return queued

    async def send_to_user(
        self,
        conn: AsyncConnection,
        template: str,
        user_id: str,
        context: Mapping[str, Any] | None = None,
        *,
        workspace_id: str | None = None,
        dedupe_key: str | None = None,
    ) -> str | None:
        """Queue `template` for a person (to their current address, with their name and
        preferences); None also for an unknown or disabled account."""
        if self.config is None:
            category_of(template)
            return None
        row = (
            await conn.execute(
                select(
                    users.c.email, users.c.name, users.c.disabled_at, users.c.mail_opt_out
                ).where(users.c.id == user_id)
            )
        ).first()
        if row is None or row.disabled_at is not None:
            return None
        return await self.send(
            conn,
            template,
            row.email,
            context,
            user_id=user_id,
            workspace_id=workspace_id,
            dedupe_key=dedupe_key,
            name=row.name,
            opted_out=list(row.mail_opt_out or ()),
        )

    async def send_to_workspace_admins(
        self,
        conn: AsyncConnection,
        workspace_id: str,
        template: str,
        context: Mapping[str, Any] | None = None,
        *,
        dedupe_key: str | None = None,
    ) -> list[str]:
        """Queue `template` for each owner and admin of the workspace; the outbox ids.
        `dedupe_key` is made per recipient (`<key>:<user id>`)."""
        if self.config is None:
            category_of(template)
            return []
        people = (
            await conn.scalars(
                select(memberships.c.user_id).where(
                    memberships.c.workspace_id == workspace_id,
                    memberships.c.role.in_(ADMIN_ROLES),
                )
            )
        ).all()
        queued = []
        for user_id in people:
            key = f"{dedupe_key}:{user_id}" if dedupe_key else None
            mail_id = await self.send_to_user(
                conn, template, user_id, context, workspace_id=workspace_id, dedupe_key=key
            )
            if mail_id is not None:
                queued.append(mail_id)
        return queued

    # -- delivery ---------------------------------------------------------------------------

    async def start(self, db: Database) -> None:
        """Deliver queued mail from this instance (every instance may: claims are atomic)."""
        if self.config is None or self._worker is not None:
            return
        from perpetuo.control.mail.worker import MailWorker

        self._worker = MailWorker(db, self)
        self._worker.start()

    async def aclose(self) -> None:
        if self._worker is not None:
            await self._worker.aclose()
            self._worker = None

    @property
    def worker(self) -> Any:
        return self._worker
