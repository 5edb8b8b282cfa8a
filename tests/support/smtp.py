"""A real SMTP server in-process (aiosmtpd, on loopback, its own thread) that keeps what it
receives, and can refuse deliveries the way providers do."""

from __future__ import annotations

import asyncio
import email
import email.policy
import re
import ssl
import threading
import time
from email.message import EmailMessage
from typing import Any

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult

from tests.support.gateway import free_port


class Inbox:
    """aiosmtpd's handler: each accepted message, parsed. `refuse` holds SMTP replies to
    give instead of accepting, one per delivery, in order (e.g. "451 4.3.0 try later")."""

    def __init__(self) -> None:
        self.messages: list[EmailMessage] = []
        self.refuse: list[str] = []
        self.deliveries = 0
        self._lock = threading.Lock()

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        with self._lock:
            self.deliveries += 1
            if self.refuse:
                return self.refuse.pop(0)
            message = email.message_from_bytes(envelope.content, policy=email.policy.default)
            assert isinstance(message, EmailMessage)
            self.messages.append(message)
        return "250 OK"

    def to(self, address: str) -> list[EmailMessage]:
        return [m for m in self.messages if m["To"] == address]

    async def wait_for(
        self, count: int = 1, within: float = 10.0, **where: str
    ) -> list[EmailMessage]:
        """Messages whose headers match `where` (To="a@b.c"), once there are at least `count`
        of them (or `within` seconds passed). Waits on the event loop the sender runs on."""
        deadline = time.monotonic() + within
        while True:
            found = [m for m in self.messages if all(m[k] == v for k, v in where.items())]
            if len(found) >= count or time.monotonic() > deadline:
                return found
            await asyncio.sleep(0.05)


class SMTPServer:
    """`tls`: None (plain, STARTTLS offered only with `starttls`), "starttls" (offered and
    required before MAIL and AUTH) or "implicit" (TLS from the first byte); `login`: the
    (user, password) AUTH accepts, required when given."""

    def __init__(
        self,
        *,
        tls: str | None = None,
        context: ssl.SSLContext | None = None,
        login: tuple[str, str] | None = None,
    ) -> None:
        self.inbox = Inbox()
        self.port = free_port()
        self.logins: list[str] = []
        options: dict[str, Any] = {}
        if tls == "starttls":
            options.update(tls_context=context, require_starttls=True)
        elif tls == "implicit":
            options.update(ssl_context=context)
        if login is not None:
            options.update(auth_required=True, authenticator=self._authenticator(login))
            options.setdefault("auth_require_tls", tls is not None)
        self._controller = Controller(
            self.inbox,
            hostname="127.0.0.1",
            port=self.port,
            server_hostname="localhost",
            **options,
        )

    def _authenticator(self, login: tuple[str, str]) -> Any:
        def check(server: Any, session: Any, envelope: Any, mechanism: str, data: Any) -> Any:
            user = data.login.decode() if data and data.login else ""
            ok = data is not None and (user, data.password.decode()) == login
            self.logins.append(f"{user}:{'ok' if ok else 'refused'}")
            return AuthResult(success=ok)

        return check

    def start(self) -> SMTPServer:
        self._controller.start()
        return self

    def stop(self) -> None:
        self._controller.stop()

    def settings(self, **extra: Any) -> dict[str, Any]:
        """Gateway settings that send mail here (plain SMTP: a loopback test server)."""
        return {
            "smtp_host": "127.0.0.1",
            "smtp_port": self.port,
            "smtp_security": "none",
            "mail_from": "Perpetuo <noreply@example.com>",
            "public_url": "https://llm.example.com",
            "mail_poll_interval": 0.1,
            "mail_retry_seconds": 0.2,
            **extra,
        }


def text_of(message: EmailMessage) -> str:
    part = message.get_body(preferencelist=("plain",))
    assert part is not None
    return part.get_content()


def html_of(message: EmailMessage) -> str:
    part = message.get_body(preferencelist=("html",))
    assert part is not None
    return part.get_content()


def link_in(message: EmailMessage, path: str) -> str:
    """The first link to `path` in the text body."""
    found = re.search(r"https://llm\.example\.com" + re.escape(path) + r"\?\S+", text_of(message))
    assert found, text_of(message)
    return found.group(0)


def token_in(message: EmailMessage, path: str) -> str:
    from urllib.parse import parse_qs, urlsplit

    return parse_qs(urlsplit(link_in(message, path)).query)["token"][0]
